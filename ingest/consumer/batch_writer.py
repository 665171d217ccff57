"""The consumer's writer (architecture §5): stores cut batches one at a time, then commits them.

Per batch: dead-letter the undecodable messages, record the range, drop duplicates, insert with
the range's dedup token (in a worker thread, so the event loop keeps heartbeating) and only
then commit `last + 1`. The commit overlaps the next batch's store, but a partition's next
range is recorded only after its previous one is committed: a replay then finds at most one
recorded range past the committed offset, and cutting its first batch there rebuilds
everything that may already have been inserted.

Duplicates are dropped here, not when a batch is cut: a batch that is never written (its
partition was revoked) must not leave its events marked as seen, or their replay would be
dropped as duplicates if the partition came back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.metrics import BATCH_ROWS, DEAD_LETTERED, INSERT_SECONDS
from viewstats.core.storage import Storage, StorageError
from viewstats.ingest.consumer.offset_ranges import insert_settings, record_range
from viewstats.ingest.consumer.partition_batcher import Batch
from viewstats.ingest.dedup import RecentEvents

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 4.0  # between store attempts while the database fails


@dataclass
class ConsumerStats:
    consumed: int = 0  # messages fetched, replays included
    inserted: int = 0  # rows sent in inserts (a replayed block is then dropped by ClickHouse)
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    store_seconds: float = 0.0  # recording ranges and inserting, in the worker thread


class BatchWriter:
    def __init__(self, storage: Storage, kafka: Any, producer: Any, dlq_topic: str,
                 dedup: RecentEvents, stats: ConsumerStats) -> None:
        self._storage, self._kafka, self._producer = storage, kafka, producer
        self._dlq_topic, self._dedup, self.stats = dlq_topic, dedup, stats
        self._lock = asyncio.Lock()  # held while a batch is written
        self._commits: dict[TopicPartition, asyncio.Task[None]] = {}  # in flight
        self._stopping = False

    async def run(self, queue: asyncio.Queue[Batch | None]) -> None:
        """Write the queued batches until None; batches of revoked partitions are skipped."""
        while (batch := await queue.get()) is not None:
            async with self._lock:
                if not batch.owner.revoked:
                    await self._write(batch)
        await self.settle()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def settle(self) -> None:
        """Return once no batch is being written and every stored batch is committed."""
        async with self._lock:
            for tp in list(self._commits):
                await self._committed(tp)

    async def _write(self, batch: Batch) -> None:
        tp = TopicPartition(batch.owner.topic, batch.owner.partition)
        await self._committed(tp)
        if batch.owner.revoked or tp not in self._kafka.assignment():
            # Its previous commit failed, or the group moved it while this batch waited: the
            # new owner cuts and writes it. (Commits fence; this narrows the window before.)
            batch.owner.revoked = True
            return
        if batch.rejected:
            await self._dead_letter(batch)
        started = time.monotonic()
        rows = await self._stored(batch)
        if rows is None:
            return
        self.stats.store_seconds += time.monotonic() - started
        INSERT_SECONDS.observe(time.monotonic() - started)
        BATCH_ROWS.observe(len(rows))
        self.stats.duplicates += len(batch.events) - len(rows)
        self.stats.inserted += len(rows)
        self._commits[tp] = asyncio.create_task(self._commit(tp, batch))
        self.stats.batches += 1

    async def _committed(self, tp: TopicPartition) -> None:
        if (commit := self._commits.pop(tp, None)) is not None:
            await commit

    async def _dead_letter(self, batch: Batch) -> None:
        source = f"{batch.owner.topic}:{batch.owner.partition}"
        sends = [await self._producer.send(
            self._dlq_topic, r.value, key=r.key,
            headers=[("reason", r.reason.encode()), ("source", f"{source}:{r.offset}".encode())])
            for r in batch.rejected]
        await asyncio.gather(*sends)
        self.stats.dead_lettered += len(sends)
        DEAD_LETTERED.inc(len(sends))

    def stop_retrying(self) -> None:
        """Give up on a batch the database refuses, instead of retrying it until it takes it:
        the consumer is stopping, and whoever owns the partition next replays the batch."""
        self._stopping = True

    async def _stored(self, batch: Batch) -> list[PlayerEvent] | None:
        """The rows stored, retrying while the database fails (a read-only or full disk, a
        server away), for as long as the partition is ours: nothing is committed past a batch
        that is not stored. None if the partition was revoked or the consumer stops first:
        then no later batch of it is written here either, and its next owner replays it.
        """
        delay = RETRY_FIRST_S
        while True:
            try:
                return await asyncio.to_thread(self._store, batch)
            except StorageError as exc:
                # The storage's health logs the burst once and flips /readyz.
                log.debug("storing %d-%d failed: %s", batch.first, batch.last, exc)
            if not self._may_retry(batch):
                return None
            await asyncio.sleep(delay)
            if not self._may_retry(batch):
                return None
            delay = min(2 * delay, RETRY_MAX_S)

    def _may_retry(self, batch: Batch) -> bool:
        """False once the partition was revoked or the consumer stops; the partition is then
        given up here, so that no later batch of it is committed past this one."""
        if batch.owner.revoked or self._stopping:
            batch.owner.revoked = True
            return False
        return True

    def _store(self, batch: Batch) -> list[PlayerEvent]:
        """In a worker thread, one hop: record the range, insert the rows not seen before.

        Safe to retry whole: recording again is harmless, the insert carries the range's token,
        and the window learns the rows only once they are stored.
        """
        self._record(batch)
        rows = self._dedup.unseen(batch.events)
        if rows:
            self._insert(batch, rows)
            self._dedup.remember(rows)
        return rows

    def _record(self, batch: Batch) -> None:
        owner = batch.owner
        record_range(self._storage, owner.topic, owner.partition, batch.first, batch.last)

    def _insert(self, batch: Batch, rows: list[PlayerEvent]) -> None:
        owner = batch.owner
        insert_events(self._storage, rows,
                      insert_settings(owner.topic, owner.partition, batch.first, batch.last))

    async def _commit(self, tp: TopicPartition, batch: Batch) -> None:
        try:
            await self._kafka.commit({tp: batch.last + 1})
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on (a revoke follows). Inserted but not committed: the next owner
            # replays the recorded range with the same token and ClickHouse drops the block.
            # Nothing more of this partition may be recorded here.
            batch.owner.revoked = True
            log.warning("%s: commit of %d-%d failed: %s", tp, batch.first, batch.last, exc)
