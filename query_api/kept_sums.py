"""Sum kept buckets into a breakdown's rows: a bucket counts per column of its rollup (e.g. type
and country), and a breakdown asks for some of those fields, filtered by others.

How a breakdown reads a bucket's columns (which pass its filters, and which row each adds to)
is worked out once per columns object and breakdown shape, then every piece is a vector sum
and a weighted count in numpy. The rows are keyed and ordered exactly as the engine's answer to
the same breakdown (query_api/breakdown.py), so that memory and engine parts of one answer add
up and either alone reads the same.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.plan import DAY_MS, floor_to, sql_date
from viewstats.query_api.sealed import Bucket, Columns, Tally

Key = tuple[str | int, ...]
Totals = dict[Key, int]  # (date text if per day, *key values) -> count
Row = tuple[str | int, ...]


@dataclass(frozen=True)
class _Projection:
    keys: list[tuple[str, ...]]  # the breakdown's key values of each output row
    out: npt.NDArray[np.intp]  # per column: the output row it adds to, -1 if filtered out
    selected: npt.NDArray[np.intp]  # the columns that pass the breakdown's filters
    index: npt.NDArray[np.intp]  # the output row of each selected column


_Shape = tuple[tuple[str, ...], str | None, str, str | None, tuple[tuple[str, str], ...]]
_cache: weakref.WeakKeyDictionary[Columns, dict[_Shape, _Projection]] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _projection(columns: Columns, query: Breakdown) -> _Projection:
    shape: _Shape = (query.keys, query.event_type, query.event_rule, query.event,
                     tuple(sorted(query.filters.items())))
    with _lock:
        found = _cache.setdefault(columns, {}).get(shape)
    if found is not None:
        return found
    at = {name: i for i, name in enumerate(columns.fields)}
    wanted = dict(query.filters)
    if query.event_type is not None:
        wanted["type"] = query.event_type
    if "event" in at and query.event_rule != "any":
        wanted["event"] = query.event if query.event is not None else "watch"
    rows: dict[tuple[str, ...], int] = {}
    out = np.full(len(columns.keys), -1, dtype=np.intp)
    for column, values in enumerate(columns.keys):
        if all(values[at[name]] == value for name, value in wanted.items()):
            out[column] = rows.setdefault(tuple(values[at[k]] for k in query.keys), len(rows))
    selected = np.flatnonzero(out >= 0)
    found = _Projection(list(rows), out, selected, out[selected])
    with _lock:
        _cache.setdefault(columns, {})[shape] = found
    return found


@lru_cache(maxsize=4096)
def _day_text(day_ms: int) -> str:
    return sql_date(day_ms)


def add_piece(totals: Totals, query: Breakdown, bucket: Bucket, a: int, b: int) -> None:
    """Add the bucket's counts in [a, b) to `totals`, keyed as the breakdown's rows."""
    projection = _projection(bucket.columns, query)
    width = len(projection.keys)
    if not width:
        return
    per_day = query.bucket == "day"
    first_day = floor_to(a, DAY_MS)
    flat: npt.NDArray[Any]
    weights: npt.NDArray[Any]
    if isinstance(bucket, Tally):
        if per_day:
            first_day, units = bucket.per_unit(a, b)
            days = units.shape[0]
            flat = (np.arange(days, dtype=np.intp)[:, None] * width
                    + projection.index[None, :]).ravel()
            weights = units[:, projection.selected].ravel()
        else:
            days, flat = 1, projection.index
            weights = bucket.between(a, b)[projection.selected]
    else:
        ts, column, n = bucket.between(a, b)
        out = projection.out[column]
        inside = out >= 0
        flat, weights = out[inside], n[inside]
        days = 1
        if per_day:
            day_of = (ts[inside] - first_day) // DAY_MS
            days = int(day_of.max()) + 1 if day_of.size else 1
            flat = day_of * width + flat
    sums = np.bincount(flat, weights=weights, minlength=days * width)
    for cell in np.flatnonzero(sums).tolist():
        day, row = divmod(cell, width)
        prefix: Key = (_day_text(first_day + day * DAY_MS),) if per_day else ()
        _add(totals, (*prefix, *projection.keys[row]), sums[cell])


def _add(totals: Totals, key: Key, count: Any) -> None:
    # Float sums of integer counts are exact below 2**53.
    totals[key] = totals.get(key, 0) + int(count)


def sorted_rows(totals: Totals, query: Breakdown) -> list[Row]:
    """(*key, count) rows in the breakdown's order, at most its limit."""
    rows = [(*key, count) for key, count in totals.items() if count]
    if query.by_views:
        rows.sort(key=lambda row: (-int(row[-1]), row[:-1]))
    else:
        rows.sort(key=lambda row: row[:-1])
    return rows if query.limit is None else rows[:query.limit]
