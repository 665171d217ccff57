"""Refill the dedup window when this member takes partitions (architecture §3).

The window (ingest/dedup.py) is per process and starts empty; without a refill, a retry of an
event the previous owner of a partition stored would count again after a restart or a
rebalance. So before the first batch of a partition taken here is cut, its stored pairs of the
last DEDUP_HORIZON_S are loaded. One query covers every partition the member holds at that
moment: after a rebalance (aiokafka's is eager, every partition is revoked and assigned again)
the first partition taken loads them all, and the others find themselves covered.

Loading pairs of a partition this member already held only re-learns what it stored itself;
the window keeps the newest time of a pair, so nothing goes backwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable

from viewstats.core.storage import Storage
from viewstats.ingest.consumer.assignment import Partition
from viewstats.ingest.dedup import PartitionFilter, RecentEvents, stored_pairs

log = logging.getLogger(__name__)


class WindowRefill:
    def __init__(self, storage: Storage, window: RecentEvents, horizon_s: float) -> None:
        self._storage, self._window, self._horizon_s = storage, window, horizon_s
        self._covered: set[Partition] = set()
        self._revokes = 0  # a revoke during a refill leaves its partitions uncovered
        self.loading = False  # a refill reads the database (liveness.py: not a Kafka stall)

    async def cover(self, partition: Partition, held: Collection[Partition],
                    partition_count: int | None) -> None:
        """Load the stored pairs of `partition` and of `held` (this member's current
        partitions of its topic) unless a refill since they were last revoked did.

        `partition_count` is the topic's; None (no metadata) loads every partition's pairs,
        which is correct, only more than the window needs.
        """
        if partition in self._covered:
            return
        owned = {p for p in held if p.topic == partition.topic} | {partition}
        only = None if partition_count is None else PartitionFilter(
            partition_count, frozenset(p.partition for p in owned))
        started, revokes = time.monotonic(), self._revokes
        since_ms = int((time.time() - self._horizon_s) * 1000)
        self.loading = True
        try:
            pairs = await asyncio.to_thread(stored_pairs, self._storage, since_ms,
                                            self._window.refill_size, only)
        finally:
            self.loading = False
        self._window.recall(pairs)
        if revokes == self._revokes:
            self._covered |= owned
        log.info("dedup window: %d stored pairs of partitions %s in %.2f s", len(pairs),
                 sorted(p.partition for p in owned), time.monotonic() - started)

    def forget_all(self) -> None:
        """Every partition must be loaded again when taken (the clients were replaced)."""
        self._revokes += 1
        self._covered.clear()

    def forget(self, revoked: Iterable[Partition]) -> None:
        """`revoked` must be loaded again when taken again: others may have stored since."""
        self._revokes += 1
        self._covered.difference_update(revoked)
