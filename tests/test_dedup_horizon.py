"""The consumer's dedup window across a rebalance, a replay and the horizon, on a real broker
(architecture §3, §5). The window's own rules are in test_dedup_window.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer

from tests.support.database import fresh_client_id
from tests.support.kafka import KafkaBroker
from tests.test_consumer import (
    Crash,
    CrashingStorage,
    Progress,
    _consume,
    _counts,
    _drain,
    _names,
    _produce,
    _stored_watches,
)
from tests.test_dedup_window import HOUR_MS, _again, _key, _now_ms, _watches
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import QuerySettings, Storage
from viewstats.devtools.topics import create_topic
from viewstats.ingest.consumer.kafka_consumer import Consumer
from viewstats.ingest.dedup import PartitionFilter, stored_pairs
from viewstats.ingest.wire import decode

ROLLUP_VIEWS = ("views_by_country_hourly_mv", "views_by_country_daily_mv")


@pytest.mark.chdb
@pytest.mark.kafka
def test_the_owned_partitions_are_those_kafka_puts_the_views_in(kafka: KafkaBroker,
                                                                  storage: Storage) -> None:
    """kafkaMurmurHash(view id) % partitions, as the refill selects a partition's views, is
    where the collector's producer (aiokafka's default partitioner) really put them."""
    topic, _ = _names()
    events = _watches(fresh_client_id(), 600, _now_ms())

    async def placed() -> dict[int, set[str]]:
        await create_topic(kafka.bootstrap, topic, partitions=5)
        await _produce(kafka.bootstrap, topic, events)
        reader = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                                  auto_offset_reset="earliest")
        await reader.start()
        where: dict[int, set[str]] = {}
        try:
            async with asyncio.timeout(60):
                while sum(map(len, where.values())) < len(events):
                    for tp, records in (await reader.getmany(timeout_ms=500)).items():
                        where.setdefault(tp.partition, set()).update(
                            _key(decode(r.value)) for r in records)
        finally:
            await reader.stop()
        return where

    where = asyncio.run(placed())
    insert_events(storage, events, {"insert_deduplicate": 0})
    assert len(where) == 5
    mine = {_key(e) for e in events}
    for partition, keys in where.items():
        owned = PartitionFilter(5, frozenset({partition}))
        selected = {key for key, _ in stored_pairs(storage, events[0].ts_ms, 10**6, owned)}
        assert selected & mine == keys, partition


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_rebalance_moves_partitions_and_their_retries_still_count_once(
        kafka: KafkaBroker, storage: Storage) -> None:
    topic, group = _names()
    client = fresh_client_id()
    first = _watches(client, 200, _now_ms())
    waves: list[PlayerEvent] = []

    async def scenario() -> tuple[Consumer, Consumer]:
        await create_topic(kafka.bootstrap, topic, partitions=4)
        a, b = (Consumer(storage, kafka.bootstrap, topic=topic, group_id=group,
                         batch_rows=100, batch_ms=50) for _ in range(2))
        running = asyncio.create_task(a.run())
        async with Progress(kafka.bootstrap, topic, group, 4) as progress:
            await _produce(kafka.bootstrap, topic, first)
            await progress.drained()  # a alone stored them all: its window has them

            async def b_took_partitions_and_wrote() -> None:
                # New views until b writes: b then holds partitions a held before.
                while b.stats.batches == 0:
                    wave = _watches(client, 20, _now_ms())
                    waves.extend(wave)
                    await _produce(kafka.bootstrap, topic, wave)
                    await progress.drained()

            async def b_consumes() -> None:
                await b_took_partitions_and_wrote()
                await _produce(kafka.bootstrap, topic, _again(first, _now_ms()))
                await progress.drained()

            await _consume(b, b_consumes)
        await a.stop()
        await running
        return a, b

    a, b = asyncio.run(scenario())
    assert _stored_watches(storage, client) == len(first) + len(waves)
    assert _counts(storage, client) == {"AU": len(first) + len(waves)}
    assert b.stats.duplicates > 0  # b knew only from the refill that these were stored
    assert a.stats.duplicates + b.stats.duplicates == len(first)


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_new_group_member_drops_retries_of_the_horizon_only(kafka: KafkaBroker,
                                                              storage: Storage) -> None:
    """Stored before this consumer ran: 40 minutes ago (within the horizon) and two hours ago
    (beyond it); the retries of the first are dropped, those of the second count again."""
    topic, group = _names()
    client, now = fresh_client_id(), _now_ms()
    within = _watches(client, 100, now - 40 * 60_000)
    beyond = _watches(client, 60, now - 2 * HOUR_MS)
    insert_events(storage, [*within, *beyond], {"insert_deduplicate": 0})

    async def scenario() -> Consumer:
        await create_topic(kafka.bootstrap, topic, partitions=3)
        await _produce(kafka.bootstrap, topic, _again([*within, *beyond], _now_ms()))
        return await _drain(storage, kafka.bootstrap, topic, group, 3, batch_rows=50)

    consumer = asyncio.run(scenario())
    assert consumer.stats.duplicates == len(within)
    assert _stored_watches(storage, client) == len(within) + 2 * len(beyond)


class RawRowsOnly(CrashingStorage):
    """Dies at the batch from offset 300 after storing its raw rows but not the rollups' (as a
    materialized view failing after the table does)."""

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        token = str((settings or {}).get("insert_deduplication_token", ""))
        if not token.split(":")[-1].startswith("300-"):
            return self._storage.insert_json(table, lines, settings)
        for view in ROLLUP_VIEWS:
            self._storage.command(f"DETACH TABLE {view}")
        try:
            self._storage.insert_json(table, lines, settings)
        finally:
            for view in ROLLUP_VIEWS:
                self._storage.command(f"ATTACH TABLE {view}")
        raise Crash


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_replay_completes_what_its_first_attempt_stored_in_part(kafka: KafkaBroker,
                                                                  storage: Storage) -> None:
    """The refill teaches the next owner the raw rows of the crashed range; its replay must
    still insert them, whole, under the range's token, or the rollups would miss them."""
    topic, group = _names()
    client = fresh_client_id()
    events = _watches(client, 900, _now_ms())  # recent: the refill loads them

    async def scenario() -> Consumer:
        await create_topic(kafka.bootstrap, topic, partitions=1)
        await _produce(kafka.bootstrap, topic, events)
        crashed = Consumer(RawRowsOnly(storage, after_insert=True), kafka.bootstrap,
                           topic=topic, group_id=group, batch_rows=300, batch_ms=60_000)
        with pytest.raises(Crash):
            await crashed.run()
        assert _stored_watches(storage, client) == 600
        assert _counts(storage, client) == {"AU": 300}
        return await _drain(storage, kafka.bootstrap, topic, group, 1, batch_rows=5000,
                            batch_ms=1000)

    replayed = asyncio.run(scenario())
    assert replayed.stats.duplicates == 0
    assert _stored_watches(storage, client) == 900
    assert _counts(storage, client) == {"AU": 900}
