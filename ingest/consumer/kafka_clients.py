"""The consumer's Kafka clients, and the typed callables handed out instead of them.

The writer commits and dead-letters through `commit` and `dead_letter`, the assignment asks
`in_group`, the liveness guard reads `group_offsets`, and a revoke reaches the consumer through
the `on_revoke` it passed to `start`: nothing but the fetch loop touches the clients themselves.
The guard's reads go through clients of its own, which never join the group (a group-less
consumer for the log end, an admin client for the committed offsets): what they see does not
depend on the state of the consumer they watch (liveness.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from viewstats.ingest.consumer.assignment import Partition
from viewstats.ingest.consumer.batch_writer import CommitRejected
from viewstats.ingest.consumer.liveness import GroupOffsets
from viewstats.ingest.consumer.partition_batcher import Rejected

log = logging.getLogger(__name__)

REBALANCE_TIMEOUT_MS = 60_000  # a revoke waits for the batch being written
# How often the consumer asks for the topic's metadata: a member whose topic did not exist (or
# had no leaders yet) when it joined is assigned nothing until it does, so aiokafka's 5 min
# default left a fresh platform idle that long.
METADATA_MAX_AGE_MS = 3_000
# What one fetch may bring, whatever the backlog and however many partitions are owned: aiokafka
# keeps a fetched partition's records until they are taken, and its default allows 50 MB.
FETCH_MAX_BYTES = 16 * 1024 * 1024
# The guard's reads; a broker that does not answer by then counts as away.
MONITOR_TIMEOUT_S = 5.0
# How long each client may take to stop before it is left to itself: with the broker away, the
# consumer's leaving the group would wait for it, and a stop must end.
STOP_TIMEOUT_S = 5.0

OnRevoke = Callable[[list[Partition]], Awaitable[None]]


class KafkaClients:
    def __init__(self, bootstrap: str, group_id: str, dlq_topic: str) -> None:
        self._bootstrap, self._group_id, self._dlq_topic = bootstrap, group_id, dlq_topic
        # Created by start(): aiokafka's clients bind the running event loop.
        self.consumer: Any = None
        self.producer: Any = None
        self._monitor: Any = None  # the guard's: the log end
        self._admin: Any = None  # the guard's: the committed offsets

    async def start(self, topic: str, on_revoke: OnRevoke) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=self._group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=FETCH_MAX_BYTES,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS, metadata_max_age_ms=METADATA_MAX_AGE_MS)
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all",
                                    enable_idempotence=True)
        timeout_ms = int(MONITOR_TIMEOUT_S * 1000)
        monitor = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, request_timeout_ms=timeout_ms)
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap,
                                    request_timeout_ms=timeout_ms)
        # All four, or stop() has none to stop.
        self.consumer, self.producer, self._monitor, self._admin = (consumer, producer, monitor,
                                                                    admin)
        await self.producer.start()
        await self._monitor.start()
        await self._admin.start()
        await self.consumer.start()
        self.consumer.subscribe([topic], listener=_Rebalance(on_revoke))

    async def stop(self) -> None:
        """Stop them side by side, each within STOP_TIMEOUT_S, so that one stuck client
        (stalled, or waiting for a broker that is away) neither keeps the others running nor
        adds its wait to theirs. A client left so holds no partition of ours any more."""
        if self.consumer is None:
            return
        await asyncio.gather(*(_stop_within(stop) for stop in (
            self._monitor.stop, self._admin.close, self.producer.stop,
            self.consumer.stop)))  # the consumer leaves the group
    async def check(self) -> None:
        if self.producer is None:
            raise RuntimeError("the consumer is not started")
        await self.producer.client.fetch_all_metadata()

    async def group_offsets(self, topic: str) -> GroupOffsets | None:
        """For the partitions of `topic` this member holds, the log end and the group's
        committed offsets, read by the guard's clients; None when it holds none, or the broker
        does not answer the producer's metadata request. What the guard's clients cannot read
        while the broker answers is None in the result."""
        tps = sorted((tp for tp in self.consumer.assignment() if tp.topic == topic),
                     key=lambda tp: tp.partition)
        if not tps:
            return None
        try:
            async with asyncio.timeout(MONITOR_TIMEOUT_S):
                await self.check()
        except (KafkaError, TimeoutError):
            return None
        ends: dict[int, int] | None = None
        committed: dict[int, int | None] | None = None
        try:
            async with asyncio.timeout(MONITOR_TIMEOUT_S):
                ends = {tp.partition: end
                        for tp, end in (await self._monitor.end_offsets(tps)).items()}
        except (KafkaError, TimeoutError):
            pass
        try:
            async with asyncio.timeout(MONITOR_TIMEOUT_S):
                found = await self._admin.list_consumer_group_offsets(self._group_id,
                                                                      partitions=tps)
            # -1: nothing committed yet for the partition.
            committed = {tp.partition: (found[tp].offset if tp in found and found[tp].offset >= 0
                                        else None) for tp in tps}
        except (KafkaError, TimeoutError):
            pass
        return GroupOffsets([tp.partition for tp in tps], ends, committed)

    async def commit(self, partition: Partition, offset: int) -> None:
        """The writer's commit: `offset` is the partition's next message to read."""
        try:
            await self.consumer.commit({TopicPartition(*partition): offset})
        except (CommitFailedError, IllegalStateError) as exc:
            raise CommitRejected(str(exc)) from exc

    async def dead_letter(self, partition: Partition, rejected: Sequence[Rejected]) -> None:
        """Each message with its reason and where it was, acknowledged by the brokers."""
        sends = [await self.producer.send(
            self._dlq_topic, r.value, key=r.key,
            headers=[("reason", r.reason.encode()), ("source", f"{partition}:{r.offset}".encode())])
            for r in rejected]
        await asyncio.gather(*sends)

    def in_group(self, partition: Partition) -> bool:
        """Whether the group's current assignment gives this member the partition."""
        return TopicPartition(*partition) in self.consumer.assignment()

    def assigned(self) -> list[Partition]:
        """The partitions the group's current assignment gives this member."""
        return [Partition(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    def partition_count(self, topic: str) -> int | None:
        """How many partitions the topic has, from the metadata; None while it is unknown."""
        partitions = self.consumer.partitions_for_topic(topic)
        return len(partitions) if partitions else None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_revoke: OnRevoke) -> None:
        self._on_revoke = on_revoke

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._on_revoke([Partition(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        log.info("assigned %s", sorted(tp.partition for tp in assigned))


async def _stop_within(stop: Callable[[], Awaitable[None]]) -> None:
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await stop()
    except asyncio.CancelledError:
        # aiokafka's fetcher, closing, awaits the fetches it cancelled and lets their
        # cancellation out (a fetch retrying while the broker is away): only a cancellation
        # of this task is passed on.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        log.warning("a Kafka client's stop raised the cancellation of its own fetch")
    except Exception as exc:
        log.warning("a Kafka client did not stop cleanly: %r", exc)
