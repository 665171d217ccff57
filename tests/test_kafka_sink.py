"""KafkaSink: an acknowledged submit means every event is in the topic, keyed by its view."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from tests.support.kafka import KafkaBroker
from viewstats.core.events import PlayerEvent
from viewstats.devtools.topics import create_topic
from viewstats.ingest import wire
from viewstats.ingest.collector.kafka_sink import KafkaSink
from viewstats.ingest.collector.sink import SinkUnavailable


def _events(count: int) -> list[PlayerEvent]:
    views = [str(uuid.uuid4()) for _ in range(count // 3)]
    return [PlayerEvent(17, 1_714_521_600_000 + n, ("init", "start", "watch")[n % 3], "live",
                        "v-9", views[n // 3], "AU", "example.com") for n in range(count)]


@pytest.mark.kafka
def test_submit_returns_once_the_broker_holds_every_event(kafka: KafkaBroker) -> None:
    topic = f"sink-{uuid.uuid4().hex[:8]}"
    events = _events(3000)

    async def scenario() -> list[tuple[int, bytes, bytes]]:
        await create_topic(kafka.bootstrap, topic, partitions=3)
        sink = KafkaSink(kafka.bootstrap, topic)
        await sink.start()
        try:
            await asyncio.gather(*(sink.submit(events[i:i + 500]) for i in range(0, 3000, 500)))
        finally:
            await sink.stop()
        reader = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                                  auto_offset_reset="earliest")
        await reader.start()
        try:
            # No waiting for stragglers: whatever submit acknowledged is readable now.
            ends = await reader.end_offsets(list(reader.assignment()))
            assert sum(ends.values()) == len(events)
            got: list[tuple[int, bytes, bytes]] = []
            async with asyncio.timeout(30):
                while len(got) < len(events):
                    for tp, records in (await reader.getmany(timeout_ms=500)).items():
                        got += [(tp.partition, r.key, r.value) for r in records]
            return got
        finally:
            await reader.stop()

    got = asyncio.run(scenario())
    assert Counter(wire.decode(value) for _, _, value in got) == Counter(events)
    assert all(key == wire.decode(value).view_id.encode() for _, key, value in got)
    partitions = {key: {p for p, k, _ in got if k == key} for _, key, _ in got}
    assert all(len(found) == 1 for found in partitions.values())  # a view stays in one partition
    # where any Kafka client puts its key: the sink picks partitions itself (partitioner.py)
    assert all(p == DefaultPartitioner()(k, [0, 1, 2], [0, 1, 2]) for p, k, _ in got)
    assert len({p for p, _, _ in got}) == 3


def test_submit_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(KafkaSink("127.0.0.1:9", "player-events").submit(_events(3)))


@pytest.mark.kafka
def test_after_a_batch_the_producer_gave_up_on_the_next_events_are_acknowledged(
        kafka: KafkaBroker) -> None:
    """A batch the producer gives up on leaves a gap in its idempotence sequence, after which
    the broker refuses the partition's later batches for good (OutOfOrderSequenceNumber). Here
    the broker refuses one too large for the topic; during an outage aiokafka expires one whose
    partition has no leader. The sink answers that request 503, then goes on with a new
    producer."""
    topic = f"gap-{uuid.uuid4().hex[:8]}"
    small, too_large = _events(3), [dataclasses.replace(_events(3)[0], video_id="v" * 2000)]

    async def scenario() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1,
                                                topic_configs={"max.message.bytes": "1000"})])
        finally:
            await admin.close()
        await create_topic(kafka.bootstrap, topic, partitions=1)  # waits for the leader
        sink = KafkaSink(kafka.bootstrap, topic)
        await sink.start()
        try:
            await sink.submit(small[:1])
            with pytest.raises(SinkUnavailable, match="MessageSizeTooLarge"):
                await sink.submit(too_large)
            refused = 0
            async with asyncio.timeout(60):
                while True:
                    try:
                        await sink.submit(small[1:])
                        return refused
                    except SinkUnavailable:  # until the new producer took over
                        refused += 1
                        await asyncio.sleep(0.1)
        finally:
            await sink.stop()

    asyncio.run(scenario())
