"""Sealed buckets (architecture §13): a client's views per (type, country) for past UTC days and
hours, and the watch events of past hours, kept in memory and summed here.

What is kept is exact because of what the process is told, never because of its age: every
write that could touch a kept bucket reaches `invalidate` (on the embedded engine the moment it
is written, in server mode when the API polls `write_records`), and the bucket is dropped. A
load that raced a write must not be kept: `put` takes the token `begin` gave before the read
and refuses when a write reached the client since.

Days and hours are kept as prefix sums over their units, so any run of days or hours sums in
one vector subtraction however long the window is; an hour's events are kept sorted by time,
so a partial-hour edge is a binary search and a count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from viewstats.core.metrics import SEALED_BYTES, SEALED_LOOKUPS

Counts = npt.NDArray[np.int64]
MAX_WRITTEN_CLIENTS = 100_000
_ENTRY_OVERHEAD = 512  # the objects around the arrays, roughly


@dataclass(frozen=True)
class Columns:
    """What each position of a vector counts: views of one type in one country."""
    types: tuple[str, ...]
    countries: tuple[str, ...]

    def add_to(self, totals: dict[str, int], counts: Counts, event_type: str | None) -> None:
        for index in np.flatnonzero(counts).tolist():
            if event_type is None or self.types[index] == event_type:
                country = self.countries[index]
                totals[country] = totals.get(country, 0) + int(counts[index])

    @property
    def nbytes(self) -> int:
        return 120 * len(self.types)


@dataclass(frozen=True)
class Tally:
    """Views of consecutive units (days or hours) from `start_ms`, as prefix sums.

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

    def between(self, lo: int, hi: int) -> Counts:
        """Views in [lo, hi); both unit-aligned and covered."""
        last = self.prefix.shape[0] - 1
        first = min(max((lo - self.start_ms) // self.unit_ms, 0), last)
        end = min(max((hi - self.start_ms) // self.unit_ms, 0), last)
        counts: Counts = self.prefix[end] - self.prefix[first]
        return counts

    @property
    def nbytes(self) -> int:
        return self.prefix.nbytes + self.columns.nbytes + _ENTRY_OVERHEAD


@dataclass(frozen=True)
class HourEvents:
    """The watch events of one hour, sorted by time, each with its column."""
    covers_from: int
    covers_to: int
    ts: npt.NDArray[np.int64]
    column: npt.NDArray[np.intp]
    columns: Columns

    def between(self, lo: int, hi: int) -> Counts:
        first, end = np.searchsorted(self.ts, [lo, hi], side="left").tolist()
        return np.bincount(self.column[first:end], minlength=len(self.columns.types)).astype(
            np.int64)

    @property
    def nbytes(self) -> int:
        return self.ts.nbytes + self.column.nbytes + self.columns.nbytes + _ENTRY_OVERHEAD


Bucket = Tally | HourEvents
# ("d", client, 0): every sealed day; ("h", client, day start): one day's hours;
# ("e", client, hour start): one hour's events.
BucketKey = tuple[str, int, int]


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
