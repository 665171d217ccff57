"""The Kafka consumer writes every event exactly once (architecture §5): real broker, chDB."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.support.database import fresh_client_id
from tests.support.kafka import KafkaBroker
from tests.support.storage_wrapper import StorageWrapper
from viewstats.core.events import PlayerEvent
from viewstats.core.storage import QuerySettings, Storage
from viewstats.devtools.processes import free_port, wait_for_http
from viewstats.devtools.topics import create_topic
from viewstats.ingest import wire
from viewstats.ingest.collector.kafka_sink import KafkaSink
from viewstats.ingest.consumer.kafka_consumer import DEFAULT_BATCH_MS, Consumer

REPO = Path(__file__).resolve().parent.parent
VIEWSTATS = Path(sys.executable).parent / "viewstats"
COUNTRIES = ("AU", "US", "DE", "BR", "ZZ")
DAY_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
TIMEOUT = 60.0


def _names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"events-{suffix}", f"group-{suffix}"


def _views(client_id: int, count: int, *, start: int = 0) -> list[PlayerEvent]:
    """`count` views, each an init, a start and a watch spread over two days."""
    events = []
    for n in range(start, start + count):
        view_id = str(uuid.UUID(int=client_id << 64 | n, version=4))
        for step, event in enumerate(("init", "start", "watch")):
            events.append(PlayerEvent(client_id, DAY_MS + n * 1711 + step, event, "vod", "v-1",
                                      view_id, COUNTRIES[n % len(COUNTRIES)], "example.com"))
    return events


def _expected(events: Sequence[PlayerEvent]) -> dict[str, int]:
    return dict(Counter(e.country for e in {(e.view_id, e.event): e for e in events}.values()
                        if e.event == "watch"))


def _counts(storage: Storage, client_id: int) -> dict[str, int]:
    rows = storage.query("SELECT country, sum(views) FROM views_by_country_daily "
                         "WHERE client_id = {c:UInt32} GROUP BY country", {"c": client_id})
    return {str(country): int(views) for country, views in rows}


def _stored_watches(storage: Storage, client_id: int) -> int:
    rows = storage.query("SELECT count() FROM player_events WHERE client_id = {c:UInt32} "
                         "AND event = 'watch'", {"c": client_id})
    return int(rows[0][0])


async def _produce(bootstrap: str, topic: str, events: Sequence[PlayerEvent],
                   chunk: int = 2000, pause: float = 0.0) -> None:
    sink = KafkaSink(bootstrap, topic)
    await sink.start()
    try:
        for i in range(0, len(events), chunk):
            await sink.submit(events[i:i + chunk])
            await asyncio.sleep(pause)
    finally:
        await sink.stop()


class Progress:
    """A group's committed offsets against the topic's end, read as any operator would."""

    def __init__(self, bootstrap: str, topic: str, group: str, partitions: int) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._group = group
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]

    async def __aenter__(self) -> Progress:
        await self._admin.start()
        await self._probe.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._probe.stop()
        await self._admin.close()

    async def committed(self) -> int:
        try:
            offsets = await self._admin.list_consumer_group_offsets(self._group)
        except KafkaError as exc:  # e.g. the group coordinator is still being elected
            if not exc.retriable:
                raise
            return 0
        return sum(max(o.offset, 0) for tp, o in offsets.items() if tp in self._tps)

    async def lag(self) -> int:
        ends: dict[TopicPartition, int] = await self._probe.end_offsets(self._tps)
        return sum(ends.values()) - await self.committed()

    async def drained(self, seconds: float = TIMEOUT) -> None:
        async def caught_up() -> bool:
            return await self.lag() == 0
        await _until(caught_up, seconds)


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = TIMEOUT) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _consume(consumer: Consumer, done: Callable[[], Awaitable[None]]) -> None:
    """Run the consumer until `done` returns, then stop it cleanly."""
    task = asyncio.create_task(consumer.run())
    try:
        waiting = asyncio.ensure_future(done())
        await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiting.cancel()
            task.result()
        await waiting
    finally:
        await consumer.stop()
    await task


async def _drain(storage: Storage, bootstrap: str, topic: str, group: str, partitions: int, *,
                 batch_rows: int, batch_ms: int = DEFAULT_BATCH_MS) -> Consumer:
    """A new group member consuming `topic` until everything produced is committed."""
    consumer = Consumer(storage, bootstrap, topic=topic, group_id=group, batch_rows=batch_rows,
                        batch_ms=batch_ms)
    async with Progress(bootstrap, topic, group, partitions) as progress:
        await _consume(consumer, progress.drained)
    return consumer


@pytest.mark.chdb
@pytest.mark.kafka
def test_counts_every_view_exactly_once(kafka: KafkaBroker, storage: Storage) -> None:
    topic, group = _names()
    clients = [fresh_client_id() for _ in range(3)]
    events = [e for i, c in enumerate(clients) for e in _views(c, 700 + 300 * i)]
    random.Random(1).shuffle(events)

    async def scenario() -> Consumer:
        await create_topic(kafka.bootstrap, topic, partitions=3)
        await _produce(kafka.bootstrap, topic, events)
        return await _drain(storage, kafka.bootstrap, topic, group, 3, batch_rows=1000)

    consumer = asyncio.run(scenario())
    for client in clients:
        mine = [e for e in events if e.client_id == client]
        assert _counts(storage, client) == _expected(mine)
        assert _stored_watches(storage, client) == len(mine) // 3
    assert consumer.stats.consumed == len(events)
    assert consumer.stats.batches > 3  # cut by size, not one block per partition


POISON: list[tuple[bytes | None, str]] = [
    (b"not json at all", "not JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    (None, "empty message"),
    (b'{"client_id": "17"}', "client_id:"),
]


def _poison(good: PlayerEvent) -> list[tuple[bytes | None, str]]:
    doc = orjson.loads(wire.encode(good))
    unknown = {**doc, "event": "pause"}
    missing = {k: v for k, v in doc.items() if k != "country"}
    wrong = {**doc, "ts": "2024-05-01"}
    return [*POISON, (orjson.dumps(unknown), "event: unknown event"),
            (orjson.dumps(missing), "country:"),
            (orjson.dumps(wrong), "ts:")]


@pytest.mark.chdb
@pytest.mark.kafka
def test_poison_messages_go_to_the_dead_letter_topic(kafka: KafkaBroker,
                                                     storage: Storage) -> None:
    topic, group = _names()
    client = fresh_client_id()
    good = _views(client, 400)
    poison = _poison(good[0])
    sent: list[tuple[bytes | None, str]] = []

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            for i, event in enumerate(good):
                await producer.send(topic, wire.encode(event), key=event.view_id.encode())
                if i % 37 == 0:  # interleaved, in both partitions
                    value, reason = poison[len(sent) % len(poison)]
                    await producer.send(topic, value, key=f"poison-{i}".encode())
                    sent.append((value, reason))
            await producer.flush()
        finally:
            await producer.stop()

    async def dead_letters() -> list[Any]:
        reader = AIOKafkaConsumer(f"{topic}-dlq", bootstrap_servers=kafka.bootstrap,
                                  auto_offset_reset="earliest")
        await reader.start()
        got: list[Any] = []
        try:
            async with asyncio.timeout(TIMEOUT):
                while len(got) < len(sent):
                    for records in (await reader.getmany(timeout_ms=500)).values():
                        got += records
        finally:
            await reader.stop()
        return got

    async def scenario() -> tuple[Consumer, list[Any]]:
        await create_topic(kafka.bootstrap, topic, partitions=2)
        await produce()
        consumer = await _drain(storage, kafka.bootstrap, topic, group, 2, batch_rows=100)
        return consumer, await dead_letters()

    consumer, letters = asyncio.run(scenario())
    assert _counts(storage, client) == _expected(good)
    assert consumer.stats.dead_lettered == len(sent)
    got = sorted((r.value or b"", dict(r.headers)["reason"].decode()) for r in letters)
    want = sorted((value or b"", reason) for value, reason in sent)
    assert [v for v, _ in got] == [v for v, _ in want]
    for (_, reason), (_, expected) in zip(got, want, strict=True):
        assert reason.startswith(expected), (reason, expected)
    assert all(dict(r.headers)["source"].decode().startswith(f"{topic}:") for r in letters)


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_repeated_watch_counts_once_and_init_start_never(kafka: KafkaBroker,
                                                          storage: Storage) -> None:
    topic, group = _names()
    client = fresh_client_id()
    views = _views(client, 300)
    # Player retries: every third view sends its events again, some in later batches.
    events = views + [e for i, e in enumerate(views) if i // 3 % 3 == 0] + views[:90]

    async def scenario() -> Consumer:
        await create_topic(kafka.bootstrap, topic, partitions=2)
        await _produce(kafka.bootstrap, topic, events, chunk=150)
        return await _drain(storage, kafka.bootstrap, topic, group, 2, batch_rows=120)

    consumer = asyncio.run(scenario())
    assert _counts(storage, client) == _expected(views)
    assert sum(_expected(views).values()) == 300
    assert _stored_watches(storage, client) == 300
    assert consumer.stats.duplicates == len(events) - len(views)


@pytest.mark.chdb
@pytest.mark.kafka
def test_two_group_members_and_a_rebalance_count_exactly(kafka: KafkaBroker,
                                                         storage: Storage) -> None:
    topic, group = _names()
    client = fresh_client_id()
    events = _views(client, 6000)

    async def scenario() -> tuple[Consumer, Consumer]:
        await create_topic(kafka.bootstrap, topic, partitions=4)
        first, second = (Consumer(storage, kafka.bootstrap, topic=topic, group_id=group,
                                  batch_rows=500, batch_ms=50) for _ in range(2))
        producing = asyncio.create_task(_produce(kafka.bootstrap, topic, events, chunk=300,
                                                 pause=0.1))
        running = asyncio.create_task(first.run())
        async with Progress(kafka.bootstrap, topic, group, 4) as progress:
            await asyncio.sleep(1.0)
            async def second_wrote() -> bool:
                return second.stats.batches >= 5
            await _consume(second, lambda: _until(second_wrote))
            await producing
            await progress.drained()
        await first.stop()
        await running
        return first, second

    first, second = asyncio.run(scenario())
    assert second.stats.batches > 0 and first.stats.batches > 0
    assert _counts(storage, client) == _expected(events)
    assert _stored_watches(storage, client) == len(events) // 3


class Crash(Exception):
    """A simulated crash at one precise point of the write path."""


class CrashingStorage(StorageWrapper):
    """The test database, but the process "dies" at the insert of the batch from offset 300:
    before it (the range is recorded, the rows are not) or right after it, before the commit.
    """

    def __init__(self, storage: Storage, *, after_insert: bool) -> None:
        super().__init__(storage)
        self._after_insert = after_insert

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        token = str((settings or {}).get("insert_deduplication_token", ""))
        crash = token.split(":")[-1].startswith("300-")
        if crash and not self._after_insert:
            raise Crash
        written = self._storage.insert_json(table, lines, settings)
        if crash:
            raise Crash
        return written


def _recorded(storage: Storage, topic: str) -> list[tuple[int, int]]:
    rows = storage.query("SELECT DISTINCT first_offset, last_offset FROM consumer_batches "
                         "WHERE topic = {t:String} ORDER BY first_offset", {"t": topic})
    return [(int(first), int(last)) for first, last in rows]


@pytest.mark.chdb
@pytest.mark.parametrize("after_insert", [False, True], ids=["before_insert", "before_commit"])
@pytest.mark.kafka
def test_a_replay_after_a_crash_rebuilds_the_recorded_range(
        kafka: KafkaBroker, storage: Storage, after_insert: bool) -> None:
    topic, group = _names()
    client = fresh_client_id()
    events = _views(client, 400)  # 1200 messages in one partition

    async def scenario() -> None:
        await create_topic(kafka.bootstrap, topic, partitions=1)
        await _produce(kafka.bootstrap, topic, events)
        crashed = Consumer(CrashingStorage(storage, after_insert=after_insert),
                           kafka.bootstrap, topic=topic, group_id=group, batch_rows=300,
                           batch_ms=60_000)
        with pytest.raises(Crash):
            await crashed.run()
        # Cut by size alone, the replay would take 0-1199 as one batch: only the recorded
        # range makes it rebuild 300-599 and reuse that batch's token.
        await _drain(storage, kafka.bootstrap, topic, group, 1, batch_rows=5000,
                     batch_ms=1000)

    asyncio.run(scenario())
    assert _counts(storage, client) == _expected(events)
    assert _stored_watches(storage, client) == 400
    assert _recorded(storage, topic) == [(0, 299), (300, 599), (600, 1199)]


COUNT_STORED = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
s = EmbeddedStorage(Path(sys.argv[1]), 1)
q = lambda sql: s.query(sql, {"c": int(sys.argv[2])})
print(json.dumps({
    "daily": dict(q("SELECT country, sum(views) FROM views_by_country_daily"
                    " WHERE client_id = {c:UInt32} GROUP BY country")),
    "hourly": dict(q("SELECT country, sum(views) FROM views_by_country_hourly"
                     " WHERE client_id = {c:UInt32} GROUP BY country")),
    "watch_rows": q("SELECT count() FROM player_events WHERE client_id = {c:UInt32}"
                    " AND event = 'watch'")[0][0],
    "rows": q("SELECT count() FROM player_events WHERE client_id = {c:UInt32}")[0][0]}))
"""


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.chdb  # its consumer process and the final count use chDB
def test_sigkilled_consumer_process_loses_and_repeats_nothing(kafka: KafkaBroker,
                                                              tmp_path: Path) -> None:
    topic, group = _names()
    client = fresh_client_id()
    events = [e for e in _views(client, 100_000) if e.event != "init"]  # 200,000
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": group, "PYTHONPATH": str(REPO)}
    log = (tmp_path / "consumer.log").open("ab")
    seed = random.randrange(2**32)
    rng = random.Random(seed)

    ports: dict[int, int] = {}  # pid -> its port

    def start() -> subprocess.Popen[bytes]:
        port = free_port()
        proc = subprocess.Popen([str(VIEWSTATS), "consumer", "--data-dir", str(tmp_path),
                                 "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        ports[proc.pid] = port
        return proc

    async def scenario() -> int:
        await create_topic(kafka.bootstrap, topic, partitions=4)
        producing = asyncio.create_task(_produce(kafka.bootstrap, topic, events, chunk=2000,
                                                 pause=0.4))
        proc = start()
        try:
            async with Progress(kafka.bootstrap, topic, group, 4) as progress:
                for _ in range(5):
                    # Killed while it works: after its first commit since (re)starting.
                    before = await progress.committed()

                    async def committed_more(before: int = before) -> bool:
                        return await progress.committed() > before
                    await _until(committed_more)
                    await asyncio.sleep(rng.uniform(0.0, 1.0))
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
                    proc = start()
                await producing
                await progress.drained(2 * TIMEOUT)
            # The last one may still be starting when the others have drained everything: a
            # SIGTERM before it serves would end it as the signal's default does.
            await asyncio.to_thread(wait_for_http, f"http://127.0.0.1:{ports[proc.pid]}/healthz",
                                    proc.poll)
            proc.send_signal(signal.SIGTERM)
            return await asyncio.to_thread(proc.wait, TIMEOUT)
        finally:
            producing.cancel()
            if proc.poll() is None:
                proc.kill()

    code = asyncio.run(scenario())
    log.close()
    assert code == 0, f"seed {seed}: " + (tmp_path / "consumer.log").read_text()[-3000:]
    done = subprocess.run([sys.executable, "-c", COUNT_STORED, str(tmp_path / "clickhouse"),
                           str(client)], capture_output=True, text=True, check=True, cwd=REPO)
    stored = json.loads(done.stdout)
    expected = _expected(events)
    assert stored["daily"] == expected, f"seed {seed}"
    assert stored["hourly"] == expected, f"seed {seed}"
    assert stored["watch_rows"] == sum(expected.values()) == 100_000
    assert stored["rows"] == len(events)
