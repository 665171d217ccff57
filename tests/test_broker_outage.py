"""A broker outage is ridden out (architecture §11), and a topic is ready however it came to be.

The broker is this module's own (the session's is shared): stopped with a real signal while
beacons stream into a real `viewstats run` in Kafka mode, then started again on its port and
log dir. Every request is answered 202, or 503 with Retry-After, within the client's timeout;
the player resends refused beacons with the same body; once the broker is back the collector
and the consumer recover by themselves, and every view answered 202 is counted exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.support.database import fresh_client_id
from tests.support.faults import BeaconStream
from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, serving, total_views
from tests.test_write_faults import wait_until
from viewstats.core.events import PlayerEvent
from viewstats.core.storage import Storage
from viewstats.devtools.processes import stop
from viewstats.devtools.restartable_broker import RestartableBroker, restartable_broker
from viewstats.devtools.topics import create_topic
from viewstats.ingest.collector.kafka_sink import KafkaSink
from viewstats.ingest.collector.sink import SinkUnavailable
from viewstats.ingest.consumer.kafka_consumer import Consumer
from viewstats.ingest.topic import dead_letter_topic

CLIENT = 17
PARTITIONS = 3  # not the broker's num.partitions (4): the count comes from the setting
PRODUCE_TIMEOUT_S = 5  # the default of KAFKA_PRODUCE_TIMEOUT_S
# A request the collector has not answered by then counts as unanswered (old code: 17 s seen).
ANSWER_TIMEOUT_S = 3 * PRODUCE_TIMEOUT_S
# Only keeps a stop that never ends from hanging the run; a passing test takes seconds.
HANG_GUARD_S = 120


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableBroker]:
    with restartable_broker(tmp_path_factory.mktemp("own-kafka")) as started:
        yield started


def _events(count: int, client: int = CLIENT) -> list[PlayerEvent]:
    now = int(time.time() * 1000)
    return [PlayerEvent(client, now + n, "watch", "vod", "v-1", str(uuid.uuid4()), "AU", "")
            for n in range(count)]


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def _messages(bootstrap: str, topic: str) -> int:
    """How many messages the topic's partitions hold."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await probe.start()
    try:
        ends = await probe.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return sum(ends.values())
    finally:
        await probe.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_the_sink_refuses_at_once_while_its_limit_of_events_wait(
        broker: RestartableBroker) -> None:
    """A broker that answers nothing (SIGSTOP) holds `max_pending` events, not more: the next
    submit is refused while those still wait, and those are acknowledged once it answers."""
    topic = f"pending-{uuid.uuid4().hex[:8]}"
    limit = 200

    async def scenario() -> None:
        await create_topic(broker.bootstrap, topic, PARTITIONS)
        sink = KafkaSink(broker.bootstrap, topic, timeout_s=120, max_pending=limit)
        await sink.start()
        try:
            await sink.submit(_events(1))  # connected, and the topic's leaders known
            broker.freeze()
            try:
                waiting = [asyncio.create_task(sink.submit([event])) for event in _events(limit)]
                await asyncio.sleep(0.5)  # each has handed its event to the producer
                with pytest.raises(SinkUnavailable, match="await the broker"):
                    await sink.submit(_events(1))
                assert not any(task.done() for task in waiting)
            finally:
                broker.thaw()
            await asyncio.gather(*waiting)
        finally:
            await sink.stop()
        assert await _messages(broker.bootstrap, topic) == 1 + limit

    asyncio.run(scenario())


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize(("outage_s", "signum"), [(10, signal.SIGKILL), (60, signal.SIGTERM)],
                         ids=["10s-sigkill", "60s-sigterm"])
def test_beacons_through_a_broker_outage_are_answered_and_counted_once(
        tmp_path: Path, broker: RestartableBroker, outage_s: int, signum: int) -> None:
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": f"g-{topic}",
           "VIEWSTATS_TOPIC_PARTITIONS": str(PARTITIONS)}
    data = tmp_path / "data"
    token = key_token(data, CLIENT)

    def ready() -> int:
        return httpx.get(base + "/readyz", timeout=10).status_code

    with serving("run", data, env=env, log=tmp_path / "run.log") as (base, _):
        # `run` made both topics at start, with the configured partitions.
        assert asyncio.run(_partition_counts(broker.bootstrap, [topic, dead_letter_topic(
            topic)])) == {topic: PARTITIONS, dead_letter_topic(topic): PARTITIONS}
        with BeaconStream(base, CLIENT, resend_refused=True,
                          timeout=ANSWER_TIMEOUT_S) as stream:
            wait_until(lambda: total_views(base, token) >= 30, "views before the outage")
            broker.kill(signum)
            down = time.monotonic()
            wait_until(lambda: ready() == 503, "/readyz to fail while the broker is away")
            wait_until(lambda: stream.counts()[1] >= 5, "503s while the broker is away")
            time.sleep(max(0.0, outage_s - (time.monotonic() - down)))
            acked_before, refused = stream.counts()
            broker.start()
            wait_until(lambda: ready() == 200, "/readyz to recover")
            wait_until(lambda: stream.counts()[0] >= acked_before + 30, "202s once it is back")
        wait_until(lambda: total_views(base, token) >= len(stream.acked), "every acked view")
        counted = total_views(base, token)
    print(f"\noutage {outage_s} s ({signal.Signals(signum).name}): {len(stream.acked)} views "
          f"answered 202, {stream.refused} requests answered 503 ({refused} before the broker "
          f"was back), slowest answer {stream.slowest:.2f} s, {counted} views counted")
    assert not stream.unexpected, stream.unexpected[:5]
    assert counted == len(stream.acked)


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_consumer_started_before_its_topic_existed_picks_it_up(
        kafka: KafkaBroker, storage: Storage) -> None:
    """The consumer joins while its topic does not exist (this broker then creates it from the
    consumer's own metadata request, with no leaders yet, as a first beacon would): it is
    assigned the partitions at its next metadata refresh, not aiokafka's default 5 min."""
    topic, client = f"late-{uuid.uuid4().hex[:8]}", fresh_client_id()
    events = _events(50, client)

    def stored() -> int:
        return int(storage.query("SELECT count() FROM player_events WHERE client_id = "
                                 "{c:UInt32}", {"c": client})[0][0])

    async def scenario() -> float:
        consumer = Consumer(storage, kafka.bootstrap, topic=topic, group_id=f"g-{topic}")
        running = asyncio.create_task(consumer.run())
        try:
            await _joined(kafka.bootstrap, f"g-{topic}")
            sink = KafkaSink(kafka.bootstrap, topic)
            await sink.start()
            try:
                await sink.submit(events)
            finally:
                await sink.stop()
            produced = time.monotonic()
            async with asyncio.timeout(60):  # far below the 300 s it took before
                while True:
                    if await asyncio.to_thread(stored) >= len(events):
                        break
                    await asyncio.sleep(0.1)
            return time.monotonic() - produced
        finally:
            await consumer.stop()
            await running

    took = asyncio.run(scenario())
    print(f"\nthe late topic's events were stored {took:.1f} s after they were produced")
    assert stored() == len(events)


async def _joined(bootstrap: str, group: str) -> None:
    """Until the group has a member (the consumer subscribed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    (described,) = await admin.describe_consumer_groups([group])
                except KafkaError as exc:  # e.g. the coordinator is still being elected
                    if not exc.retriable:
                        raise
                else:
                    groups = described.to_object()["groups"]
                    if groups and groups[0]["members"]:
                        return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("role", ["collector", "run"])
def test_a_process_stopped_while_the_broker_is_away_exits_cleanly(
        tmp_path: Path, broker: RestartableBroker, role: str) -> None:
    """SIGTERM during an outage: the collector's producer would wait for the broker to flush
    what it holds (none of it acknowledged to anyone), and `run`'s consumer for its last
    commits; each gives that up after its timeout (the consumer's next owner replays what they
    covered) and exits 0 instead of hanging until it is killed."""
    topic = f"stop-{role}-{uuid.uuid4().hex[:8]}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": f"g-{topic}",
           "VIEWSTATS_TOPIC_PARTITIONS": str(PARTITIONS)}
    try:
        with serving(role, tmp_path / "data", env=env) as (base, proc):
            with BeaconStream(base, CLIENT, timeout=ANSWER_TIMEOUT_S) as stream:
                wait_until(lambda: stream.counts()[0] >= 10, "202s before the outage")
                broker.kill(signal.SIGKILL)
                wait_until(lambda: stream.counts()[1] >= 3, "503s while the broker is away")
            assert stop(proc) == 0  # SIGTERM; a SIGKILL after 30 s would make it -9
        assert not stream.unexpected, stream.unexpected[:5]
    finally:
        broker.start()  # for the module's other tests


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_stop_ends_while_taking_a_partition_waits_for_the_broker(
        kafka: KafkaBroker, storage: Storage, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The broker went away right after an assignment: taking the partition asks it for the
    committed offset, which then never comes (made so here). The stop gives the partition up
    to its next owner; it used to wait until the stall guard replaced the clients, some 30 s
    later, past an orchestrator's grace, and the process was killed."""
    topic = f"taking-{uuid.uuid4().hex[:8]}"
    asking = asyncio.Event()

    async def never_answered(*_: object) -> None:
        asking.set()
        await asyncio.Event().wait()

    async def scenario() -> None:
        await create_topic(kafka.bootstrap, topic, partitions=1)
        sink = KafkaSink(kafka.bootstrap, topic)
        await sink.start()
        try:
            await sink.submit(_events(5, fresh_client_id()))
        finally:
            await sink.stop()
        monkeypatch.setattr(AIOKafkaConsumer, "committed", never_answered)
        consumer = Consumer(storage, kafka.bootstrap, topic=topic, group_id=f"g-{topic}")
        running = asyncio.create_task(consumer.run())
        async with asyncio.timeout(HANG_GUARD_S):
            await asking.wait()
            await consumer.stop()
            await running

    asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    assert any("the fetch loop still waits for the broker" in m for m in messages)
    assert not any("the consumer is stalled" in m for m in messages)
