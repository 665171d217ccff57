"""Answer a breakdown from sealed buckets where memory holds them, and ask the engine only for the
rest, in one read (architecture §13).

The window is cut at the sealed boundary, the start of the quarter-hour SEALED_AFTER ago. Before
it, the window is whole UTC days (the client's day tally), quarter-hour runs at both ends (the
kept quarter-hours of those days) and, when an edge is finer than a quarter-hour, the fragments
up to it (the kept events of that quarter-hour). Each piece memory holds is summed from it;
every other piece, and all of the window from the boundary on (recent, still written to), is
summed by the engine in one planned statement (query_api/breakdown.py). What a request lacked is
loaded afterwards (query_api/bucket_filler.py). While the buckets cannot be vouched for
(server mode, `write_records` unreadable) the engine answers everything.

A breakdown per UTC hour, or one no rollup holds (two of id, host and country), has no buckets:
the engine answers it whole.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace

from viewstats.core.storage import QuerySettings, Storage
from viewstats.query_api.breakdown import Breakdown, run_breakdown
from viewstats.query_api.bucket_filler import BucketFiller
from viewstats.query_api.bucket_loads import Wanted, load
from viewstats.query_api.kept_sums import Totals, add_pieces, sorted_rows
from viewstats.query_api.plan import DAY_MS, QUARTER_MS, ceil_to, floor_to
from viewstats.query_api.sealed import Bucket, BucketKey, SealedBuckets
from viewstats.query_api.window import Window
from viewstats.query_api.write_feed import POLL_INTERVAL_S, follow_writes

Row = tuple[str | int, ...]
MISSED_EDGES = 10_000  # the quarter-hours' events missed once, most recent kept
Piece = tuple[BucketKey, int, int]  # a bucket and the run [a, b) of it the window covers


def _runs(lo: int, hi: int, unit: int) -> Iterator[tuple[int, int, int]]:
    """[lo, hi) cut at unit boundaries: (unit start, run start, run end)."""
    while lo < hi:
        start = floor_to(lo, unit)
        end = min(hi, start + unit)
        yield start, lo, end
        lo = end


def pieces(client_id: int, rollup: str, lo: int, hi: int) -> list[Piece]:
    """[lo, hi) as the buckets that hold it: fragments finer than a quarter-hour (events),
    quarter-hour runs within a day, and whole days."""
    q_lo, q_hi = ceil_to(lo, QUARTER_MS), floor_to(hi, QUARTER_MS)
    if q_lo >= q_hi:
        q_lo = q_hi = hi
    d_lo, d_hi = ceil_to(q_lo, DAY_MS), floor_to(q_hi, DAY_MS)
    if d_lo >= d_hi:
        d_lo = d_hi = q_hi
    found: list[Piece] = [(("e", client_id, rollup, q), a, b)
                          for q, a, b in _runs(lo, q_lo, QUARTER_MS)]
    found += [(("q", client_id, rollup, day), a, b) for day, a, b in _runs(q_lo, d_lo, DAY_MS)]
    if d_lo < d_hi:
        found.append((("d", client_id, rollup, 0), d_lo, d_hi))
    found += [(("q", client_id, rollup, day), a, b) for day, a, b in _runs(d_hi, q_hi, DAY_MS)]
    found += [(("e", client_id, rollup, q), a, b) for q, a, b in _runs(q_hi, hi, QUARTER_MS)]
    return found


class KeptAnswers:
    """`background=False` loads missing buckets before answering, from them (for tests that
    must exercise the buckets on every read); by default the engine answers what is missing and
    the buckets are loaded after it."""

    def __init__(self, storage: Storage, sealed_after_s: int, max_bytes: int, *,
                 poll_interval_s: float = POLL_INTERVAL_S, background: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._sealed_after_ms = sealed_after_s * 1000
        self._clock = clock
        self.buckets = SealedBuckets(max_bytes)
        self._filler = BucketFiller(storage, self.buckets) if background else None
        # Whether kept buckets may be used now: `current` may read write_records (I/O),
        # `recent` only says whether they were read within the poll interval. The feed is
        # kept as long as the buckets: its listener is held weakly.
        self._feed = follow_writes(storage, self.buckets, poll_interval_s)
        self._lock = threading.Lock()
        self._missed: OrderedDict[BucketKey, bool] = OrderedDict()  # see _asked_before

    @staticmethod
    def keeps(query: Breakdown) -> bool:
        rollup = query.rollup
        return (rollup is not None and rollup.measure_kind == "sum"
                and query.bucket in (None, "day"))

    def rows_in_memory(self, query: Breakdown) -> list[Row] | None:
        """The answer when kept buckets alone hold it, without any I/O (so it may run on the
        event loop); None when it needs the engine (then call `rows`)."""
        boundary = self._boundary()
        if not self.keeps(query) or query.window.end_ms > boundary or not self._feed.recent():
            return None
        found, missing = self._lookup(query, query.window.start_ms, query.window.end_ms,
                                      may_load=False)
        if missing:
            return None
        totals: Totals = {}
        add_pieces(totals, query, found)
        return sorted_rows(totals, query)

    def rows(self, query: Breakdown, settings: QuerySettings | None = None) -> list[Row]:
        """The answer, in the breakdown's order; blocks on the engine (a worker thread)."""
        lo, hi = query.window.start_ms, query.window.end_ms
        if not self.keeps(query) or not self._feed.current():
            return run_breakdown(self._storage, query, settings)
        boundary = self._boundary()
        found, missing = self._lookup(query, lo, min(hi, boundary)) if lo < boundary else ([], [])
        totals: Totals = {}
        add_pieces(totals, query, found)
        engine = _merged([(a, b) for _, a, b in missing] + [(max(lo, boundary), hi)])
        if not found:  # nothing from memory: the engine answers whole, its LIMIT included
            rows = run_breakdown(self._storage, query, settings)
        else:
            for row in run_breakdown(self._storage, replace(query, limit=None), settings,
                                     engine):
                key = row[:-1]
                totals[key] = totals.get(key, 0) + int(row[-1])
            rows = sorted_rows(totals, query)
        if missing:
            self._fill(query, missing, boundary)
        return rows

    def _boundary(self) -> int:
        now_ms = int(self._clock() * 1000)
        return floor_to(now_ms - self._sealed_after_ms, QUARTER_MS)

    def _lookup(self, query: Breakdown, lo: int, hi: int, *, may_load: bool = True
                ) -> tuple[list[tuple[Bucket, int, int]], list[Piece]]:
        """The kept buckets that hold [lo, hi) with the run of each, and the pieces memory
        lacks. Without a filler (and when `may_load`), missing buckets are loaded here."""
        rollup = query.rollup
        assert rollup is not None
        found: list[tuple[Bucket, int, int]] = []
        missing: list[Piece] = []
        for key, a, b in pieces(query.client_id, rollup.name, lo, hi):
            bucket = self.buckets.get(key)
            if bucket is not None and bucket.covers(a, b):
                found.append((bucket, a, b))
            else:
                missing.append((key, a, b))
        if missing and may_load and self._filler is None:
            token = self.buckets.begin()
            loaded = load(self._storage, query.client_id,
                          Wanted.of(rollup, [key for key, _, _ in missing], self._boundary()))
            for key, bucket in loaded.items():
                self.buckets.put(key, query.client_id, bucket, token)
            found += [(loaded[key], a, b) for key, a, b in missing]
            missing = []
        return found, missing

    def _fill(self, query: Breakdown, missing: list[Piece], boundary: int) -> None:
        if self._filler is None or query.rollup is None:
            return
        keys = frozenset(key for key, _, _ in missing
                         if key[0] != "e" or self._asked_before(key))
        if keys:
            # Queued after this request's own read: its load never competes with the answer.
            self._filler.request(query.client_id, query.rollup, keys, boundary)

    def _asked_before(self, key: BucketKey) -> bool:
        """Whether a quarter-hour's events were missed before: they are loaded on the second
        miss only. Windows at random minutes rarely share a quarter-hour, and loading each
        edge they touch would double their engine reads; a dashboard that moves its edge
        within the same hours asks the same quarter-hours again."""
        with self._lock:
            if self._missed.pop(key, False):
                return True
            self._missed[key] = True
            if len(self._missed) > MISSED_EDGES:
                self._missed.popitem(last=False)
            return False


def _merged(ranges: list[tuple[int, int]]) -> list[Window]:
    """The non-empty ranges as windows, touching ones joined (fewer ranges in the statement)."""
    windows: list[Window] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if windows and windows[-1].end_ms >= a:
            windows[-1] = Window(windows[-1].start_ms, max(b, windows[-1].end_ms))
        else:
            windows.append(Window(a, b))
    return windows
