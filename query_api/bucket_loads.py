"""Load a client's sealed buckets of one rollup (query_api/sealed.py) from the engine, through
the planner like any answer (query_api/breakdown.py): a breakdown by every key of the rollup,
per day, quarter-hour or millisecond.

- days: every sealed day of the client, from the rollup's daily table, and then every later
  window of that client finds its days here;
- quarter-hours: whole UTC days of them, from `player_events` (no rollup is that fine), for the
  days where windows put their edges;
- events: the counted events of single quarter-hours, for edges finer than a quarter-hour.

Each comes back as one row per key, with the bucket starts and counts as arrays, so that a large
load is converted by numpy rather than row by row in Python.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from viewstats.core.rollups import Rollup
from viewstats.core.storage import Storage
from viewstats.query_api.breakdown import Breakdown, Bucket, breakdown_query
from viewstats.query_api.plan import DAY_MS, QUARTER_MS, floor_to
from viewstats.query_api.sealed import Bucket as Kept
from viewstats.query_api.sealed import BucketKey, Columns, Points, Tally
from viewstats.query_api.window import Window

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Wanted:
    """What a window is missing of one rollup: all sealed days before `days_to` (0: none), the
    quarter-hours of `quarter_days` (day starts) up to `sealed_to`, and the events of
    `event_quarters` (quarter starts)."""
    rollup: Rollup
    days_to: int
    quarter_days: tuple[int, ...]
    event_quarters: tuple[int, ...]
    sealed_to: int

    @classmethod
    def of(cls, rollup: Rollup, keys: Collection[BucketKey], sealed_to: int) -> Wanted:
        """What loads the buckets `keys` (of one client and rollup)."""
        starts = {kind: sorted(start for kind_, _, _, start in keys if kind_ == kind)
                  for kind in ("d", "q", "e")}
        return cls(rollup, floor_to(sealed_to, DAY_MS) if starts["d"] else 0,
                   tuple(starts["q"]), tuple(starts["e"]), sealed_to)


def load(storage: Storage, client_id: int, wanted: Wanted) -> dict[BucketKey, Kept]:
    """The buckets `wanted` names, keyed as SealedBuckets keeps them."""
    rollup, name = wanted.rollup, wanted.rollup.name
    query = Breakdown(client_id, Window(0, 0), rollup.keys)
    assert query.rollup == rollup, "a rollup's own keys choose it"
    kept: dict[BucketKey, Kept] = {}
    if wanted.days_to:
        kept[("d", client_id, name, 0)] = _days(
            wanted.days_to, *_read(storage, query, "day", [Window(0, wanted.days_to)]))
    days = [Window(day, min(day + DAY_MS, wanted.sealed_to)) for day in wanted.quarter_days]
    if days:
        kept.update({("q", client_id, name, day.start_ms): points
                     for day, points in zip(days, _points(storage, query, "quarter", days),
                                            strict=True)})
    quarters = [Window(q, q + QUARTER_MS) for q in wanted.event_quarters]
    if quarters:
        kept.update({("e", client_id, name, q.start_ms): points
                     for q, points in zip(quarters, _points(storage, query, "ms", quarters),
                                          strict=True)})
    return kept


def _read(storage: Storage, query: Breakdown, bucket: Bucket, windows: Sequence[Window]
          ) -> tuple[Columns, Int64s, npt.NDArray[np.intp], Int64s]:
    """The rollup's columns, and each count's bucket start, column and value."""
    statement = breakdown_query(Breakdown(query.client_id, query.window, query.keys, bucket),
                                windows, arrays=True)
    assert statement is not None
    rows: list[Any] = storage.query(*statement)
    columns = Columns(query.keys, tuple(tuple(str(v) for v in row[:-2]) for row in rows))
    lengths = [len(row[-2]) for row in rows]
    stamps = np.fromiter((b for row in rows for b in row[-2]), np.int64, sum(lengths))
    n = np.fromiter((v for row in rows for v in row[-1]), np.int64, sum(lengths))
    column = np.repeat(np.arange(len(rows), dtype=np.intp), lengths)
    return columns, stamps, column, n


def _points(storage: Storage, query: Breakdown, bucket: Bucket,
            spans: Sequence[Window]) -> list[Points]:
    columns, stamps, column, n = _read(storage, query, bucket, spans)
    order = np.argsort(stamps, kind="stable")
    stamps, column, n = stamps[order], column[order], n[order]
    found = []
    for span in spans:
        first, end = np.searchsorted(stamps, [span.start_ms, span.end_ms]).tolist()
        found.append(Points.packed(span.start_ms, span.end_ms, stamps[first:end],
                                   column[first:end], n[first:end], columns))
    return found


def _days(covers_to: int, columns: Columns, stamps: Int64s, column: npt.NDArray[np.intp],
          n: Int64s) -> Tally | Points:
    """Every day before `covers_to`: prefix sums from the first day with data, or the points
    themselves when nearly all cells of those sums would be zero (a small client's many
    videos): the sums then take many times the bytes, where summing points costs time."""
    start = min(int(stamps.min()) if stamps.size else covers_to, covers_to)
    units = (covers_to - start) // DAY_MS
    if units * len(columns.keys) > 8 * stamps.size:
        order = np.argsort(stamps, kind="stable")
        return Points.packed(0, covers_to, stamps[order], column[order], n[order], columns)
    grid = np.zeros((units + 1, len(columns.keys)), dtype=np.int64)
    np.add.at(grid, ((stamps - start) // DAY_MS + 1, column), n)
    return Tally(0, covers_to, start, DAY_MS, columns, np.cumsum(grid, axis=0))
