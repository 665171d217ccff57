"""The consumer's writer (architecture §5): stores cut batches one at a time, then commits them.

Per batch: dead-letter the undecodable messages, record the range, drop duplicates, insert with
the range's dedup token (in a worker thread, so the event loop keeps heartbeating) and only
then commit `last + 1`. The commit overlaps the next batch's store, but a partition's next
range is recorded only after its previous one is committed: a replay then finds at most one
recorded range past the committed offset, and cutting its first batch there rebuilds
everything that may already have been inserted.

The writer reaches Kafka only through the callables it is given, and asks the assignment
(assignment.py) whether a batch's partition is still ours, telling it only when it gives one up.

Duplicates are dropped here, not when a batch is cut: a batch that is never written (its
partition was revoked) must not leave its events marked as seen, or their replay would be
dropped as duplicates if the partition came back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from viewstats.core.events import insert_json_rows
from viewstats.core.metrics import BATCH_ROWS, DEAD_LETTERED, INSERT_SECONDS
from viewstats.core.storage import Storage, StorageError
from viewstats.ingest.consumer.assignment import Lease, Partition
from viewstats.ingest.consumer.offset_ranges import insert_settings, record_range
from viewstats.ingest.consumer.partition_batcher import Batch, Rejected
from viewstats.ingest.dedup import RecentEvents

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 4.0  # between store attempts while the database fails


class CommitRejected(Exception):
    """The group moved on: this member may no longer commit the partition's offsets."""


# Commits the partition's next offset to read; raises CommitRejected when the group moved on.
Commit = Callable[[Partition, int], Awaitable[None]]
# Sends a partition's undecodable messages to the dead-letter topic, returning once all are
# acknowledged.
DeadLetter = Callable[[Partition, Sequence[Rejected]], Awaitable[None]]


class Ownership(Protocol):
    """What the writer may know of revocation: ask about a lease, or give it up."""

    def holds(self, lease: Lease) -> bool: ...
    def give_up(self, lease: Lease) -> None: ...


@dataclass
class ConsumerStats:
    consumed: int = 0  # messages fetched, replays included
    inserted: int = 0  # rows sent in inserts (a replayed block is then dropped by ClickHouse)
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    store_seconds: float = 0.0  # recording ranges and inserting, in the worker thread


class BatchWriter:
    def __init__(self, storage: Storage, ownership: Ownership, commit: Commit,
                 dead_letter: DeadLetter, dedup: RecentEvents, stats: ConsumerStats) -> None:
        self._storage, self._ownership = storage, ownership
        self._commit_offset, self._dead_letter = commit, dead_letter
        self._dedup, self.stats = dedup, stats
        self._lock = asyncio.Lock()  # held while a batch is written
        self._commits: dict[Partition, asyncio.Task[None]] = {}  # in flight
        self._stopping = False
        self._not_storing = asyncio.Event()
        self._not_storing.set()

    async def run(self, queue: asyncio.Queue[Batch | None]) -> None:
        """Write the queued batches until None; batches of partitions not held are skipped."""
        while (batch := await queue.get()) is not None:
            async with self._lock:
                await self._write(batch)
        await self.settle()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def storing(self) -> bool:
        """A batch is being stored, or waits to be tried again while the database fails."""
        return not self._not_storing.is_set()

    def describe(self) -> str:
        """What the writer is doing, for the log line of a stall."""
        state = "storing" if self.storing else "busy" if self.busy else "idle"
        commits = ", ".join(str(p) for p in self._commits) or "none"
        return f"writer {state}, commits in flight: {commits}"

    async def stored(self) -> None:
        """Return once no batch is being stored."""
        await self._not_storing.wait()

    async def settle(self) -> None:
        """Return once no batch is being written and every stored batch is committed."""
        async with self._lock:
            for partition in list(self._commits):
                await self._committed(partition)

    async def _write(self, batch: Batch) -> None:
        partition = batch.lease.partition
        await self._committed(partition)
        # Revoked, given up (a commit failed, an earlier batch was abandoned) or moved by the
        # group while this batch waited: the next owner cuts and writes it. (Commits fence;
        # this narrows the window before.)
        if not self._still_ours(batch):
            return
        if batch.rejected:
            await self._dead_letter(partition, batch.rejected)
            self.stats.dead_lettered += len(batch.rejected)
            DEAD_LETTERED.inc(len(batch.rejected))
        started = time.monotonic()
        rows = await self._stored(batch)
        if rows is None:
            return
        self.stats.store_seconds += time.monotonic() - started
        INSERT_SECONDS.observe(time.monotonic() - started)
        BATCH_ROWS.observe(rows)
        self.stats.duplicates += len(batch.rows) - rows
        self.stats.inserted += rows
        self._commits[partition] = asyncio.create_task(self._commit(batch))
        self.stats.batches += 1

    async def _committed(self, partition: Partition) -> None:
        if (commit := self._commits.pop(partition, None)) is not None:
            await commit

    async def abandon(self) -> None:
        """Cancel the commits in flight: their clients were stalled and are replaced. A batch
        left uncommitted is replayed by the partition's next owner, cut at its recorded range."""
        commits = list(self._commits.values())
        self._commits.clear()
        for commit in commits:
            commit.cancel()
        await asyncio.gather(*commits, return_exceptions=True)

    def stop_retrying(self) -> None:
        """Give up on a batch the database refuses, instead of retrying it until it takes it:
        the consumer is stopping, and whoever owns the partition next replays the batch."""
        self._stopping = True

    async def _stored(self, batch: Batch) -> int | None:
        """How many rows were stored, retrying while the database fails (a read-only or full disk, a
        server away), for as long as the partition is ours: nothing is committed past a batch
        that is not stored. None if the partition was revoked or the consumer stops first:
        then no later batch of it is written here either, and its next owner replays it.
        """
        self._not_storing.clear()
        try:
            return await self._store_retrying(batch)
        finally:
            self._not_storing.set()

    async def _store_retrying(self, batch: Batch) -> int | None:
        delay = RETRY_FIRST_S
        while True:
            try:
                return await asyncio.to_thread(self._store, batch)
            except StorageError as exc:
                # The storage's health logs the burst once and flips /readyz.
                log.debug("storing %d-%d failed: %s", batch.first, batch.last, exc)
            if not self._still_ours(batch, retrying=True):
                return None
            await asyncio.sleep(delay)
            if not self._still_ours(batch, retrying=True):
                return None
            delay = min(2 * delay, RETRY_MAX_S)

    def _still_ours(self, batch: Batch, *, retrying: bool = False) -> bool:
        """Whether the batch may still be stored and committed here. If not, its partition is
        given up, so that no later batch of it is committed past this one. A stop abandons
        only retries: what the database takes at once is still written on the way out."""
        if self._ownership.holds(batch.lease) and not (retrying and self._stopping):
            return True
        self._ownership.give_up(batch.lease)
        return False

    def _store(self, batch: Batch) -> int:
        """In a worker thread, one hop: record the range, insert the rows not seen before.

        Safe to retry whole: recording again is harmless, the insert carries the range's token,
        and the window learns the rows only once they are stored. A replay (a batch cut at a
        recorded range) inserts again what its first attempt stored: see ingest/dedup.py.
        """
        topic, partition = batch.lease.partition
        record_range(self._storage, topic, partition, batch.first, batch.last)
        rows = batch.rows
        fresh = self._dedup.unseen_keys(rows.keys, rows.ts_ms, replay=batch.replay)
        if fresh is not None:
            rows = rows.select(fresh)
        if rows.lines:
            insert_json_rows(self._storage, rows.lines, rows.client_ids,
                             (min(rows.ts_ms), max(rows.ts_ms)),
                             insert_settings(topic, partition, batch.first, batch.last))
            self._dedup.remember_keys(rows.keys, rows.ts_ms)
        return len(rows)

    async def _commit(self, batch: Batch) -> None:
        try:
            await self._commit_offset(batch.lease.partition, batch.last + 1)
        except CommitRejected as exc:
            # A revoke follows. Inserted but not committed: the next owner replays the recorded
            # range with the same token and ClickHouse drops the block. Nothing more of this
            # partition may be recorded here.
            self._ownership.give_up(batch.lease)
            log.warning("%s: commit of %d-%d failed: %s", batch.lease.partition, batch.first,
                        batch.last, exc)
