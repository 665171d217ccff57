"""The exactly-once Kafka consumer (architecture §5): fetch, decode, batch, then hand to the writer.

The fetch loop cuts each owned partition into batches of contiguous offset ranges and hands
them through a bounded queue to one `BatchWriter`, so a slow database stops the fetching
instead of growing memory: at most one batch's worth of messages is open across partitions,
`QUEUE_BATCHES` wait, and one is being written. Only the fetch loop uses the Kafka clients;
the writer and the assignment get callables (kafka_clients.py).

Rebalance: on revoke, the assignment (assignment.py) stops holding the revoked partitions, so
their open and queued batches are never written (their new owner replays them), and the
callback waits until the batch being written is written and every stored batch committed, so
no range of theirs is recorded or committed here afterwards; the group's next owner starts only
after every member's revoke returned. Records fetched across a revoke are dropped and their
partitions rewound to the committed offset. A partition is taken when its first records
arrive: its start is the committed offset, and a range recorded as starting there is the exact
cut of its first batch; before that, the dedup window learns its stored pairs (window_refill.py).

Stall: a liveness guard (liveness.py) watches the group's committed offsets from outside. When
events wait and nothing is committed while the broker answers, this member's Kafka clients are
replaced. The old clients' partitions are revoked first, as on a rebalance, so no batch of
theirs is written or committed afterwards; the new clients join the group and take each
partition from its committed offset, cutting at its recorded range, as after a restart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from viewstats.core.metrics import CONSUMER_LAG, CONSUMER_STALLS
from viewstats.core.storage import Storage
from viewstats.ingest.consumer.assignment import Assignment, Partition
from viewstats.ingest.consumer.batch_writer import BatchWriter, ConsumerStats
from viewstats.ingest.consumer.heap import return_large_frees
from viewstats.ingest.consumer.kafka_clients import KafkaClients
from viewstats.ingest.consumer.liveness import STALL_AFTER_S, GroupOffsets, Liveness, Stalled
from viewstats.ingest.consumer.offset_ranges import recorded_last
from viewstats.ingest.consumer.partition_batcher import Batch, PartitionBatcher
from viewstats.ingest.consumer.window_refill import WindowRefill
from viewstats.ingest.dedup import DEFAULT_CAPACITY, DEFAULT_HORIZON_S, RecentEvents
from viewstats.ingest.topic import dead_letter_topic

log = logging.getLogger(__name__)

# Bounds the open batches together, so a backlog over P partitions cuts batches of about
# 2 x DEFAULT_BATCH_ROWS / (P + 1) rows. Each insert costs the engine a fixed ~40-90 ms of CPU
# (a part in player_events and in each rollup, their merges), so larger blocks are cheaper per
# event: 100,000 halves the inserts of 50,000 at ~+30 MB of anonymous memory (one partition,
# the worst case: ~365 MB measured, under the 400 MB bound).
DEFAULT_BATCH_ROWS = 100_000
DEFAULT_BATCH_MS = 200
# Cut batches waiting for the writer: one keeps it busy, as the fetch loop outruns it.
QUEUE_BATCHES = 1
POLL_MS = 50
MAX_POLL_RECORDS = 1_000  # one poll's decoding (~3 ms) holds up the writer's commits
BUSY_AGE_FACTOR = 5  # a batch may age to 5 x batch_ms (1 s) while the writer is busy
RESTART_BACKOFF_S = 1.0  # between attempts to start new clients while the broker is away
# A stop's last stores and commits, before they are left to a replay: with the sink's 5 s and
# the clients' stop, a stop ends within an orchestrator's usual 30 s grace.
SHUTDOWN_TIMEOUT_S = 8.0
# How long a stop waits for the fetch loop's turn to end before it gives the partitions up.
FETCH_STOP_TIMEOUT_S = 3.0


class Consumer:
    def __init__(self, storage: Storage, bootstrap: str, *, topic: str, group_id: str,
                 dlq_topic: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
                 batch_ms: int = DEFAULT_BATCH_MS, dedup_capacity: int = DEFAULT_CAPACITY,
                 dedup_horizon_s: float = DEFAULT_HORIZON_S,
                 stall_after_s: float = STALL_AFTER_S) -> None:
        return_large_frees()
        self.stats = ConsumerStats()
        self._storage, self._topic = storage, topic
        self._batch_rows, self._batch_age = batch_rows, batch_ms / 1000
        self._kafka = (bootstrap, group_id, dlq_topic or dead_letter_topic(topic))
        self._window = RecentEvents(dedup_capacity)
        self._refill = WindowRefill(storage, self._window, dedup_horizon_s)
        self._liveness = Liveness(self._read_offsets, self._storing, stall_after_s=stall_after_s)
        self._stopping, self._finished = asyncio.Event(), asyncio.Event()
        self._running = False
        self._phase = "starting"  # where the fetch loop waits, for the log line of a stall
        self._fresh()

    def _fresh(self) -> None:
        """New Kafka clients, and the state that belongs to them: the assignment, the open
        batches, the queue and the writer. The dedup window outlives them."""
        self._clients = KafkaClients(*self._kafka)
        self._assignment = Assignment(self._clients.in_group)
        self._batchers: dict[Partition, PartitionBatcher] = {}
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(QUEUE_BATCHES)
        self._writer = BatchWriter(self._storage, self._assignment, self._clients.commit,
                                   self._clients.dead_letter, self._window, self.stats)

    async def run(self) -> None:
        """Consume until `stop()`; raises if Kafka or the database fails for good. Stalled
        clients are replaced by new ones (see above)."""
        self._running = True
        replacing = False
        try:
            while True:
                try:
                    await self._consume()
                    return
                except Stalled:
                    CONSUMER_STALLS.inc()
                    replacing = True
                except KafkaConnectionError as exc:
                    if not replacing:
                        raise  # at start: the environment's fault, for the process to report
                    log.warning("new Kafka clients could not connect (%r); trying again", exc)
                    await asyncio.sleep(RESTART_BACKOFF_S)
                if self._stopping.is_set():
                    return
                self._fresh()
        finally:
            self._finished.set()

    async def _consume(self) -> None:
        clients, writer = self._clients, asyncio.create_task(self._writer.run(self._queue))
        watch: asyncio.Task[None] | None = None
        fetching: asyncio.Task[None] | None = None
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await clients.start(self._topic, functools.partial(self._revoked_from, clients))
            watch = asyncio.create_task(self._liveness.watch())
            fetching = asyncio.create_task(self._fetch_loop(writer))
            await asyncio.wait((fetching, watch, stopping), return_when=asyncio.FIRST_COMPLETED)
            if watch.done() and not fetching.done():  # a fetch loop's error comes first
                if not isinstance(watch.exception(), Stalled):
                    watch.result()  # the guard itself failed: a bug, raised as it is
                log.error("the consumer is stalled (%s; fetch loop %s, %s, %d batch(es) queued); "
                          "starting new Kafka clients", self._liveness.stalled, self._phase,
                          self._writer.describe(), self._queue.qsize())
                await self._abandon(writer, fetching)
                watch.result()  # raises Stalled
            if not await self._fetching_ended(fetching):
                log.warning("stopping: the fetch loop still waits for the broker after %g s "
                            "(is it away?); the partitions' next owner replays their batches",
                            FETCH_STOP_TIMEOUT_S)
                await self._abandon(writer, fetching)
            elif not await self._flushed(writer):
                log.warning("stopping: the last batches were not stored and committed within "
                            "%g s (is the broker away?); their next owner replays them",
                            SHUTDOWN_TIMEOUT_S)
                await self._abandon(writer, fetching)
        finally:
            for task in (watch, fetching, writer, stopping):
                if task is not None and not task.done():
                    task.cancel()
            await clients.stop()

    async def _fetching_ended(self, fetching: asyncio.Task[None]) -> bool:
        """On a stop: whether the fetch loop ended (raising its error) within
        FETCH_STOP_TIMEOUT_S. It sees the stop at its next turn, but a turn that takes a
        partition asks the broker for its committed offset, which waits for as long as the
        broker is away (the broker killed right after an assignment, say)."""
        await asyncio.wait((fetching,), timeout=FETCH_STOP_TIMEOUT_S)
        if not fetching.done():
            return False
        fetching.result()
        return True

    async def _flushed(self, writer: asyncio.Task[None]) -> bool:
        """On a stop: the open batches and then the end to the writer; whether all of them were
        stored and committed within SHUTDOWN_TIMEOUT_S. A commit waits for the broker, so a
        stop while it is away would otherwise never end."""
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                now = time.monotonic()
                for batch in [b.cut_now(now) for b in self._batchers.values()]:
                    if batch is not None:
                        await self._enqueue(batch, writer)
                await self._enqueue(None, writer)
                await asyncio.wait((writer,))  # not cancelled by the timeout: see _abandon
        except TimeoutError:
            return False
        writer.result()  # the writer failed: raise its error
        return True

    async def _abandon(self, writer: asyncio.Task[None], fetching: asyncio.Task[None]) -> None:
        """Give up every partition of these clients (stalled, or stopping with the broker away),
        as a revoke does, and return once nothing of theirs is being stored: a store's thread
        cannot be stopped, and the next writer must not store beside it."""
        self._assignment.revoke_all()
        # All, not only those held: a partition assigned but not taken yet was covered too.
        self._refill.forget_all()
        self._batchers.clear()
        fetching.cancel()
        await self._writer.stored()
        writer.cancel()
        await self._writer.abandon()

    async def check(self) -> None:
        """Raise unless the brokers answer a metadata request (for /readyz)."""
        await self._clients.check()

    async def check_progress(self) -> None:
        """Raise while the consumer is stalled: from the stall until commits move again."""
        if (stalled := self._liveness.stalled) is not None:
            raise Stalled(stalled)

    async def stop(self) -> None:
        self._stopping.set()
        self._writer.stop_retrying()
        if self._running:
            await self._finished.wait()

    async def _revoked_from(self, clients: KafkaClients, revoked: list[Partition]) -> None:
        """A revoke from `clients`; stalled clients replaced since have nothing left here."""
        if clients is self._clients:
            await self.on_revoke(revoked)

    async def on_revoke(self, revoked: list[Partition]) -> None:
        """The group takes `revoked` away: returns once nothing of theirs is written here."""
        self._assignment.revoke(revoked)
        self._refill.forget(revoked)
        for partition in revoked:
            self._batchers.pop(partition, None)
        await self._writer.settle()

    async def _read_offsets(self) -> GroupOffsets | None:
        return await self._clients.group_offsets(self._topic)

    def _storing(self) -> bool:
        return self._writer.storing or self._refill.loading

    async def _fetch_loop(self, writer: asyncio.Task[None]) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        fetch: asyncio.Future[Any] | None = None
        try:
            while not self._stopping.is_set():
                # Taken before the fetch: a revoke that runs while getmany() returns makes
                # all of its records stale, even those of partitions not owned here yet.
                epoch = self._assignment.epoch
                self._phase = "fetching"
                fetch = asyncio.ensure_future(self._clients.consumer.getmany(
                    timeout_ms=POLL_MS, max_records=MAX_POLL_RECORDS))
                await asyncio.wait((fetch, stopping, writer), return_when=asyncio.FIRST_COMPLETED)
                if writer.done():
                    fetch.cancel()
                    writer.result()  # the writer failed: raise its error
                if not fetch.done():
                    fetch.cancel()  # only ever waiting, never holding records
                    break
                self._phase = "taking what it fetched"
                for batch in await self._take(fetch.result(), epoch):
                    self._phase = "waiting for the writer"
                    await self._enqueue(batch, writer)
        finally:
            stopping.cancel()
            if fetch is not None:
                fetch.cancel()  # cancelled itself (a stall): only ever waiting, never holding

    async def _take(self, fetched: dict[Any, list[Any]], epoch: int) -> list[Batch]:
        done: list[Batch] = []
        taken = set()
        for tp, messages in fetched.items():
            partition = Partition(tp.topic, tp.partition)
            current = epoch == self._assignment.epoch
            batcher = self._batchers.get(partition) if current else None
            if batcher is None and current:
                batcher = await self._own(partition, messages[0].offset)
            if batcher is None or epoch != self._assignment.epoch:
                break  # a rebalance came between: the rest is fetched again, see _rewind
            taken.add(tp)
            self.stats.consumed += len(messages)
            done += batcher.add(messages, time.monotonic())
            if (end := self._clients.consumer.highwater(tp)) is not None:
                CONSUMER_LAG.labels(str(tp.partition)).set(max(0, end - messages[-1].offset - 1))
        await self._rewind([tp for tp in fetched if tp not in taken])
        done += self._cut_fullest(time.monotonic())
        # While the writer is busy a batch cut now would only wait; letting it grow a while
        # makes fewer, cheaper inserts without holding any partition's events back for long.
        idle = self._queue.empty() and not self._writer.busy
        age = self._batch_age * (1 if idle else BUSY_AGE_FACTOR)
        return done + [b for b in (p.due(time.monotonic(), age) for p in self._batchers.values())
                       if b is not None]

    async def _rewind(self, partitions: list[Any]) -> None:
        """Fetch dropped records again, from the committed offset (the log's start when none).

        Records fetched across a rebalance may come from before or after the new assignment;
        the fetch position has moved past them either way, so dropping them without a rewind
        would skip them. Batchers ignore offsets they already hold.
        """
        for tp in partitions:
            if tp not in self._clients.consumer.assignment():
                continue
            committed = await self._clients.consumer.committed(tp)
            if tp not in self._clients.consumer.assignment():
                continue  # revoked meanwhile (seek would raise): its next owner reads it
            if committed is None:
                await self._clients.consumer.seek_to_beginning(tp)
            else:
                self._clients.consumer.seek(tp, committed)

    async def _own(self, partition: Partition, first_fetched: int) -> PartitionBatcher | None:
        epoch = self._assignment.epoch
        await self._refill.cover(partition, self._clients.assigned(),
                                 self._clients.partition_count(partition.topic))
        committed = await self._clients.consumer.committed(TopicPartition(*partition))
        start = first_fetched if committed is None else committed
        cut_at = await asyncio.to_thread(recorded_last, self._storage, *partition, start)
        if epoch != self._assignment.epoch:
            return None
        log.info("%s: from offset %d%s", partition, start,
                 "" if cut_at is None else f", first batch cut at recorded {start}-{cut_at}")
        batcher = PartitionBatcher(self._assignment.take(partition), start, cut_at,
                                   self._batch_rows)
        self._batchers[partition] = batcher
        return batcher

    def _cut_fullest(self, now: float) -> list[Batch]:
        """Cut the fullest open batches until all together hold at most one batch's worth."""
        done = []
        while sum(p.pending for p in self._batchers.values()) > self._batch_rows:
            fullest = max((p for p in self._batchers.values() if p.may_cut),
                          key=lambda p: p.pending, default=None)
            batch = fullest.cut_now(now) if fullest else None
            if batch is None:
                break
            done.append(batch)
        return done

    async def _enqueue(self, batch: Batch | None, writer: asyncio.Task[None]) -> None:
        if not self._queue.full():
            self._queue.put_nowait(batch)
            return
        put = asyncio.ensure_future(self._queue.put(batch))
        try:
            await asyncio.wait((put, writer), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            put.cancel()  # the fetch loop is cancelled (a stall): the batch is dropped with it
            raise
        if not put.done():
            put.cancel()
            writer.result()

