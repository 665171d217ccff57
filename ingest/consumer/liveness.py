"""Notice a consumer that stopped moving while Kafka answers (architecture §5).

A consumer was seen stuck after a broker outage, with nothing raised and nothing logged: it held
its partitions and committed nothing, for good. Whatever the cause, progress is judged from
outside the consumer's own clients, as a lag monitor would: the group's committed offsets
against the log end of the topic, read by a client of the guard's own. The consumer is stalled
when events wait (the log end is past the committed offsets) and the committed offsets have not
moved for `stall_after_s`, while the broker answers and the database is not what holds the
writer up (a store running or failing is the database's check to report, not a Kafka stall).
A committed offset that cannot be read while the log end can (no coordinator) counts as one
that did not move.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

STALL_AFTER_S = 30.0  # well past a rebalance's usual seconds, within the soak's 30 s for lag
CHECK_EVERY_S = 2.0


class Stalled(Exception):
    """Events wait and nothing was committed for a while, though the broker answers."""


@dataclass(frozen=True)
class GroupOffsets:
    """The topic's log end and the group's committed offset, by partition; a committed offset
    is None when there is none yet, and `committed` is None when it could not be read."""

    ends: Mapping[int, int]
    committed: Mapping[int, int | None] | None

    @property
    def waiting(self) -> int:
        """Events past the committed offsets (all of them when those could not be read)."""
        committed = self.committed or {}
        return sum(max(0, end - (committed.get(p) or 0)) for p, end in self.ends.items())


# Reads the offsets; None when the broker does not answer (an outage, not a stall).
ReadOffsets = Callable[[], Awaitable[GroupOffsets | None]]


class Liveness:
    def __init__(self, read: ReadOffsets, storing: Callable[[], bool], *,
                 stall_after_s: float = STALL_AFTER_S, check_every_s: float = CHECK_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read, self._storing = read, storing
        self._stall_after_s, self._check_every_s = stall_after_s, check_every_s
        self._clock = clock
        self.stalled: str | None = None  # why, from the first stall until progress is seen
        # The committed offsets last read; kept across watches, so that the next clients'
        # first check does not count as progress.
        self._last: Mapping[int, int | None] | None = None

    async def watch(self) -> None:
        """Check every `check_every_s` until the consumer is stalled, then raise Stalled."""
        moved_at = self._clock()
        while True:
            await asyncio.sleep(self._check_every_s)
            offsets = await self._read()
            now = self._clock()
            progressed = offsets is not None and (offsets.waiting == 0 or (
                offsets.committed is not None and offsets.committed != self._last))
            if progressed:
                self.stalled = None  # a stall seen before is over
            if progressed or offsets is None or self._storing():
                moved_at = now
            elif now - moved_at >= self._stall_after_s:
                self.stalled = (f"{offsets.waiting} events wait and no offset was committed "
                                f"for {now - moved_at:.0f} s while the broker answers")
                raise Stalled(self.stalled)
            if offsets is not None and offsets.committed is not None:
                self._last = offsets.committed
