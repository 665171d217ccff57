"""Notice a consumer that stopped moving while Kafka answers (architecture §5).

A consumer was seen stuck after a broker outage, with nothing raised and nothing logged: it held
its partitions and committed nothing, for good. Whatever the cause, progress is judged from
outside the consumer's own clients, as a lag monitor would: for each partition this member
holds, the log end against the group's committed offset, read by clients of the guard's own.
The consumer is stalled when one of its partitions has events waiting and its committed offset
has not moved for `stall_after_s`, while the broker answers and the database is not what holds
the writer up (a store running or failing is the database's check to report, not a Kafka
stall). A committed offset or a log end that cannot be read while the broker answers (no
coordinator) counts as one that did not move. A member that holds no partition (a rebalance, or
more members than partitions) is not judged: the group's other members are theirs to judge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

# Detection only: replacing the clients and rejoining add seconds more.
STALL_AFTER_S = 30.0
CHECK_EVERY_S = 2.0


class Stalled(Exception):
    """Events wait on a partition and nothing was committed for a while, though the broker
    answers."""


@dataclass(frozen=True)
class GroupOffsets:
    """For the partitions this member holds: the log end and the group's committed offset
    (None: none yet). `ends` or `committed` is None when it could not be read."""

    partitions: Sequence[int]
    ends: Mapping[int, int] | None
    committed: Mapping[int, int | None] | None

    def waiting(self, partition: int) -> int | None:
        """Events past the committed offset; None when the log end is unknown."""
        if self.ends is None:
            return None
        committed = self.committed.get(partition) if self.committed is not None else None
        return max(0, self.ends.get(partition, 0) - (committed or 0))

    def commit(self, partition: int) -> int | None:
        return self.committed.get(partition) if self.committed is not None else None


# Reads the offsets; None when the broker does not answer (an outage, not a stall) or the
# member holds no partition.
ReadOffsets = Callable[[], Awaitable[GroupOffsets | None]]
_UNSEEN = object()


class Liveness:
    def __init__(self, read: ReadOffsets, storing: Callable[[], bool], *,
                 stall_after_s: float = STALL_AFTER_S, check_every_s: float = CHECK_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read, self._storing = read, storing
        self._stall_after_s, self._check_every_s = stall_after_s, check_every_s
        self._clock = clock
        self.stalled: str | None = None  # why, from the first stall until a commit moves
        # Each partition's committed offset last read: kept across watches, so that the next
        # clients' first look does not count as a move.
        self._last: dict[int, object] = {}

    async def watch(self) -> None:
        """Check every `check_every_s` until the consumer is stalled, then raise Stalled."""
        moved_at: dict[int, float] = {}  # each held partition's last move (or first sight)
        while True:
            await asyncio.sleep(self._check_every_s)
            offsets = await self._read()
            now = self._clock()
            if offsets is None or self._storing():
                moved_at.clear()  # the wait is excused: counts start again
                continue
            committed_moved = [p for p in offsets.partitions if self._committed_moved(offsets, p)]
            if committed_moved or all(offsets.waiting(p) == 0 for p in offsets.partitions):
                self.stalled = None  # a stall seen before is over
            for p in offsets.partitions:
                # A move, or the partition's first sight in this watch: its count starts.
                if p in committed_moved or offsets.waiting(p) == 0 or p not in moved_at:
                    moved_at[p] = now
            moved_at = {p: moved_at[p] for p in offsets.partitions}  # only those still held
            stuck = [p for p in offsets.partitions if now - moved_at[p] >= self._stall_after_s]
            if stuck:
                waiting = sum(offsets.waiting(p) or 0 for p in stuck)
                waited = max(now - moved_at[p] for p in stuck)
                self.stalled = (f"partitions {stuck} of this member: {waiting} events wait and "
                                f"no offset was committed for {waited:.0f} s while the broker "
                                "answers")
                raise Stalled(self.stalled)

    def _committed_moved(self, offsets: GroupOffsets, partition: int) -> bool:
        """Whether the partition's committed offset differs from the one last read (and notes
        it); one that cannot be read did not move."""
        if offsets.committed is None:
            return False
        commit, last = offsets.commit(partition), self._last.get(partition, _UNSEEN)
        self._last[partition] = commit
        return last is not _UNSEEN and commit != last
