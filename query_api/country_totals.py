"""Views per country for one client, type and window: sealed buckets from memory, the rest from
the engine (architecture §13).

The window is cut at the sealed boundary, the start of the hour SEALED_AFTER ago. Before it,
the window's whole days, whole hours and partial-hour edges are summed from sealed buckets when
all of them are in memory. From the boundary on, the window is recent and still written to: it
is summed by the engine in one planned query (query_api/plan.py). So is the whole window when
a bucket it needs is missing (which is then loaded in the background, so that a client's first
window costs what it costs without buckets), and every window while the buckets cannot be
vouched for (server mode, `write_records` unreadable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from viewstats.core.storage import Storage
from viewstats.query_api.bucket_filler import BucketFiller
from viewstats.query_api.bucket_loads import Wanted, load
from viewstats.query_api.plan import DAY_MS, HOUR_MS, countries_query, plan_window
from viewstats.query_api.sealed import Bucket, BucketKey, SealedBuckets, Tally
from viewstats.query_api.window import Window
from viewstats.query_api.write_feed import POLL_INTERVAL_S, follow_writes

Rows = list[tuple[str, int]]
_Missing = tuple[Wanted, frozenset[BucketKey]]  # what to load, and the buckets it fills


def _runs(lo: int, hi: int, unit: int) -> Iterator[tuple[int, int, int]]:
    """[lo, hi) cut at unit boundaries: (unit start, run start, run end)."""
    while lo < hi:
        start = lo - lo % unit
        end = min(hi, start + unit)
        yield start, lo, end
        lo = end


class CountryTotals:
    """`background=False` loads missing buckets before answering, from them (for tests that
    must exercise the buckets on every read); by default the engine answers such a request and
    the buckets are loaded after it (query_api/bucket_filler.py)."""

    def __init__(self, storage: Storage, sealed_after_s: int, max_bytes: int, *,
                 poll_interval_s: float = POLL_INTERVAL_S, background: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._storage = storage
        self._sealed_after_ms = sealed_after_s * 1000
        self._clock = clock
        self.buckets = SealedBuckets(max_bytes)
        self._filler = BucketFiller(storage, self.buckets) if background else None
        # Whether kept buckets may be used now: `current` may read write_records (I/O),
        # `recent` only says whether they were read within the poll interval.
        feed = follow_writes(storage, self.buckets, poll_interval_s)
        self._current, self._recent = feed.current, feed.recent

    def rows(self, client_id: int, event_type: str | None, window: Window) -> Rows:
        """(country, views) sorted by views descending, then country."""
        totals: dict[str, int] = {}
        lo, hi = window.start_ms, window.end_ms
        missing: _Missing | None = None
        if self._current():
            boundary = self._boundary()
            if lo < boundary:
                missing = self._add_sealed(totals, client_id, event_type, lo, min(hi, boundary),
                                           boundary)
                if missing is None:
                    lo = min(hi, boundary)
        if lo < hi:
            query = countries_query(plan_window(Window(lo, hi)), client_id, event_type)
            for country, views in self._storage.query(*query) if query else ():
                totals[str(country)] = totals.get(str(country), 0) + int(views)
        if missing is not None and self._filler is not None:
            # Queued after this request's own query: its load never competes with the answer.
            self._filler.request(client_id, *missing)
        return _sorted(totals)

    def rows_in_memory(self, client_id: int, event_type: str | None,
                       window: Window) -> Rows | None:
        """The answer when kept buckets alone hold it, without any I/O (so it may run on the
        event loop); None when it needs the engine (then call `rows`)."""
        boundary = self._boundary()
        if window.end_ms > boundary or not self._recent():
            return None
        totals: dict[str, int] = {}
        if self._add_sealed(totals, client_id, event_type, window.start_ms, window.end_ms,
                            boundary, may_load=False) is not None:
            return None
        return _sorted(totals)

    def _boundary(self) -> int:
        now_ms = int(self._clock() * 1000)
        return (now_ms - self._sealed_after_ms) // HOUR_MS * HOUR_MS

    def _add_sealed(self, totals: dict[str, int], client_id: int, event_type: str | None,
                    lo: int, hi: int, boundary: int, *, may_load: bool = True
                    ) -> _Missing | None:
        """Add [lo, hi) from sealed buckets and return None, or add nothing and return what
        is missing. Without a filler (and when `may_load`), missing buckets are loaded here
        first."""
        plan = plan_window(Window(lo, hi))
        runs: list[tuple[BucketKey, int, int]] = []
        if plan.days[0] < plan.days[1]:
            runs.append((("d", client_id, 0), *plan.days))
        for part in (plan.head_hours, plan.tail_hours):
            runs += [(("h", client_id, day), a, b) for day, a, b in _runs(*part, DAY_MS)]
        for part in (plan.head_raw, plan.tail_raw):
            runs += [(("e", client_id, hour), a, b) for hour, a, b in _runs(*part, HOUR_MS)]
        found: dict[BucketKey, Bucket] = {}
        for key, a, b in runs:
            bucket = self.buckets.get(key)
            if bucket is not None and (not isinstance(bucket, Tally) or bucket.covers(a, b)):
                found[key] = bucket
        missing = frozenset(key for key, _, _ in runs if key not in found)
        if missing:
            wanted = Wanted(
                days_to=boundary // DAY_MS * DAY_MS if ("d", client_id, 0) in missing else 0,
                hour_days=tuple(sorted(k[2] for k in missing if k[0] == "h")),
                event_hours=tuple(sorted(k[2] for k in missing if k[0] == "e")),
                sealed_to=boundary)
            if self._filler is not None or not may_load:
                return wanted, missing
            token = self.buckets.begin()
            for key, bucket in load(self._storage, client_id, wanted).items():
                self.buckets.put(key, client_id, bucket, token)
                found[key] = bucket
        for key, a, b in runs:
            bucket = found[key]
            bucket.columns.add_to(totals, bucket.between(a, b), event_type)
        return None


def _sorted(totals: dict[str, int]) -> Rows:
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))
