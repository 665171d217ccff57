"""Which partitions this member may still write and commit (architecture §5).

The single owner of revocation. The consumer takes a partition when its first records arrive
and revokes it when the group moves it away; the writer gives one up when it may no longer
commit past a batch of it (a commit failed, or a batch could not be stored before a revoke or
a stop). Nobody else records either.

Each taking is a `Lease`, and every batch carries the lease it was cut under: a partition that
comes back after a revoke is taken under a new lease, so batches of the old one, still queued,
are never written or committed; a partition given up stays given up until the group revokes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple


class Partition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}"


@dataclass(frozen=True, eq=False, slots=True)
class Lease:
    """One taking of a partition; compared by identity, so each taking is a different lease."""

    partition: Partition


class Assignment:
    """`in_group` says whether the group's current assignment has the partition: the group may
    move it while a batch waits for the writer, before the revoke reaches us."""

    def __init__(self, in_group: Callable[[Partition], bool]) -> None:
        self._in_group = in_group
        self._held: dict[Partition, Lease] = {}
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Bumped by every revoke: records fetched before it may belong to the old assignment."""
        return self._epoch

    def take(self, partition: Partition) -> Lease:
        lease = Lease(partition)
        self._held[partition] = lease
        return lease

    def holds(self, lease: Lease) -> bool:
        """Whether batches cut under `lease` may still be written and committed here."""
        return self._held.get(lease.partition) is lease and self._in_group(lease.partition)

    def give_up(self, lease: Lease) -> None:
        """Write and commit nothing more under `lease`: a batch of it will not be committed,
        so no later one may be committed past it. Its next owner replays from the commit."""
        if self._held.get(lease.partition) is lease:
            del self._held[lease.partition]

    def revoke(self, partitions: Iterable[Partition]) -> None:
        self._epoch += 1
        for partition in partitions:
            self._held.pop(partition, None)

    def revoke_all(self) -> list[Partition]:
        """Revoke every partition held (stalled clients are replaced); returns them."""
        held = list(self._held)
        self.revoke(held)
        return held
