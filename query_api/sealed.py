"""Sealed buckets (architecture §13): one client's counts per rollup key for past UTC days,
quarter-hours and milliseconds, kept in memory and summed here, for every breakdown a rollup
holds (viewstats/core/rollups.py).

What is kept is exact because of what the process is told, never because of its age: every
write that could touch a kept bucket reaches `invalidate` (on the embedded engine the moment it
is written, in server mode when the API polls `write_records`), and the bucket is dropped. A
load that raced a write must not be kept: `put` takes the token `begin` gave before the read
and refuses when a write reached the client since.

A client's days are kept as prefix sums over every sealed day (a Tally), so any run of days sums
in one vector subtraction however long the window is; when most of those cells would be zero (a
small client with many videos), as sparse points instead. Quarter-hours (per day) and events
(per quarter-hour) are kept sparse: sorted (time, column, count) points, so a run is a binary
search and a weighted count. A client's videos are thousands of columns, most of them empty in
any one quarter-hour.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from viewstats.core.metrics import SEALED_BYTES, SEALED_LOOKUPS

Counts = npt.NDArray[np.int64]
Ints = npt.NDArray[np.integer[Any]]
MAX_WRITTEN_CLIENTS = 100_000
_ENTRY_OVERHEAD = 512  # the objects around the arrays, roughly


@dataclass(frozen=True, eq=False)
class Columns:
    """What each position of a vector counts: the values of the rollup's key fields (`keys`,
    e.g. type and country) that one column holds. Compared by identity: answers cache how to
    read a bucket's columns (query_api/kept_answers.py) per object."""
    fields: tuple[str, ...]
    keys: tuple[tuple[str, ...], ...]

    @property
    def nbytes(self) -> int:
        return (64 + 56 * len(self.fields)) * len(self.keys)


@dataclass(frozen=True)
class Tally:
    """Counts of consecutive units (days) from `start_ms`, as prefix sums.

    It covers [covers_from, covers_to): units inside that span and outside the data are zero.
    """
    covers_from: int
    covers_to: int
    start_ms: int
    unit_ms: int
    columns: Columns
    prefix: Counts  # (units + 1, columns), prefix[0] = 0

    def covers(self, lo: int, hi: int) -> bool:
        return self.covers_from <= lo and hi <= self.covers_to

    @property
    def first_ms(self) -> int:
        """Where the data starts (no count before it)."""
        return self.start_ms

    def _index(self, ms: int) -> int:
        return min(max((ms - self.start_ms) // self.unit_ms, 0), int(self.prefix.shape[0]) - 1)

    def between(self, lo: int, hi: int) -> Counts:
        """Counts in [lo, hi); both unit-aligned and covered."""
        counts: Counts = self.prefix[self._index(hi)] - self.prefix[self._index(lo)]
        return counts

    def per_unit(self, lo: int, hi: int) -> tuple[int, Counts]:
        """The first unit's start at or after the data's, and each unit's counts from it, in
        [lo, hi) (unit-aligned and covered)."""
        first, end = self._index(lo), self._index(hi)
        units: Counts = np.diff(self.prefix[first:end + 1], axis=0)
        return self.start_ms + first * self.unit_ms, units

    @property
    def nbytes(self) -> int:
        return self.prefix.nbytes + self.columns.nbytes + _ENTRY_OVERHEAD


@dataclass(frozen=True)
class Points:
    """Counts at instants (quarter-hour starts, or event times) in [covers_from, covers_to),
    sorted by time. Each array takes the smallest integer type its values fit: a heavy client's
    quarter-hours are millions of points."""
    covers_from: int
    covers_to: int
    offset: Ints  # ms after covers_from
    column: Ints
    n: Ints
    columns: Columns

    @classmethod
    def packed(cls, covers_from: int, covers_to: int, ts: Ints, column: Ints, n: Ints,
               columns: Columns) -> Points:
        return cls(covers_from, covers_to, _packed(ts - covers_from), _packed(column),
                   _packed(n), columns)

    def covers(self, lo: int, hi: int) -> bool:
        return self.covers_from <= lo and hi <= self.covers_to

    @property
    def first_ms(self) -> int:
        """Where the data starts (no count before it)."""
        return self.covers_from + int(self.offset[0]) if self.offset.size else self.covers_to

    def between(self, lo: int, hi: int) -> tuple[Ints, Ints, Ints]:
        """The points in [lo, hi): their times (epoch ms), columns and counts."""
        first, end = np.searchsorted(self.offset, [lo - self.covers_from,
                                                   hi - self.covers_from]).tolist()
        return (self.offset[first:end].astype(np.int64) + self.covers_from,
                self.column[first:end], self.n[first:end])

    @property
    def nbytes(self) -> int:
        # The columns are shared by every day of one load and counted with its day tally.
        return self.offset.nbytes + self.column.nbytes + self.n.nbytes + _ENTRY_OVERHEAD


def _packed(values: Ints) -> Ints:
    """`values` (none negative) in the smallest unsigned type that holds them all."""
    return values.astype(np.min_scalar_type(int(values.max()) if values.size else 0))


Bucket = Tally | Points
# (kind, client, rollup name, start): ("d", c, r, 0) every sealed day; ("q", c, r, day start)
# one day's quarter-hours; ("e", c, r, quarter start) one quarter-hour's events.
BucketKey = tuple[str, int, str, int]


@dataclass
class _Written:
    """Which write, counted in `generation`, last reached each client (or every client)."""
    generation: int = 0
    everyone: int = 0
    clients: dict[int, int] = field(default_factory=dict)


class SealedBuckets:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[BucketKey, tuple[int, Bucket]] = OrderedDict()
        self._by_client: dict[int, set[BucketKey]] = {}
        self._bytes = 0
        self._written = _Written()

    def get(self, key: BucketKey) -> Bucket | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                SEALED_LOOKUPS.labels("miss").inc()
                return None
            self._entries.move_to_end(key)
        SEALED_LOOKUPS.labels("hit").inc()
        return entry[1]

    def holds(self, key: BucketKey) -> bool:
        """Whether the bucket is kept; no request's lookup (no metric, no LRU move)."""
        with self._lock:
            return key in self._entries

    def begin(self) -> int:
        with self._lock:
            return self._written.generation

    def put(self, key: BucketKey, client_id: int, bucket: Bucket, token: int) -> bool:
        """Keep `bucket` unless a write reached its client after `begin` returned `token`."""
        size = bucket.nbytes
        with self._lock:
            written = self._written
            if max(written.everyone, written.clients.get(client_id, 0)) > token \
                    or size > self._max_bytes:
                return False
            self._drop(key)
            self._entries[key] = (client_id, bucket)
            self._by_client.setdefault(client_id, set()).add(key)
            self._bytes += size
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))
            SEALED_BYTES.set(self._bytes)
            return True

    def invalidate(self, client_ids: Collection[int], lo_ms: int, hi_ms: int) -> None:
        """A write touched these clients at event times [lo_ms, hi_ms]."""
        with self._lock:
            written = self._written
            written.generation += 1
            if len(written.clients) + len(client_ids) > MAX_WRITTEN_CLIENTS:
                # Rather than remember every client id a beacon may name, count the write as
                # touching every client for the loads in flight.
                written.clients.clear()
                written.everyone = written.generation
            else:
                written.clients.update(dict.fromkeys(client_ids, written.generation))
            for client_id in client_ids:
                for key in list(self._by_client.get(client_id, ())):
                    bucket = self._entries[key][1]
                    if lo_ms < bucket.covers_to and bucket.covers_from <= hi_ms:
                        self._drop(key)
            SEALED_BYTES.set(self._bytes)

    def invalidate_all(self) -> None:
        with self._lock:
            self._written.generation += 1
            self._written.everyone = self._written.generation
            self._written.clients.clear()
            self._entries.clear()
            self._by_client.clear()
            self._bytes = 0
            SEALED_BYTES.set(0)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _drop(self, key: BucketKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        client_id, bucket = entry
        self._bytes -= bucket.nbytes
        keys = self._by_client[client_id]
        keys.discard(key)
        if not keys:
            del self._by_client[client_id]
