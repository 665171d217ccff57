"""Sum kept buckets into a breakdown's rows: a bucket counts per column of its rollup (e.g. type
and country), and a breakdown asks for some of those fields, filtered by others.

How a breakdown reads a bucket's columns (which pass its filters, and which row each adds to)
is worked out once per columns object and breakdown shape, then every piece is a vector sum
and a weighted count in numpy. The rows are keyed and ordered exactly as the engine's answer to
the same breakdown (query_api/breakdown.py), so that memory and engine parts of one answer add
up and either alone reads the same.
"""

from __future__ import annotations

import heapq
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


@dataclass(frozen=True, eq=False)
class _Projection:
    keys: list[tuple[str, ...]]  # the breakdown's key values of each output row
    out: npt.NDArray[np.intp]  # per column: the output row it adds to, -1 if filtered out
    selected: npt.NDArray[np.intp]  # the columns that pass the breakdown's filters
    index: npt.NDArray[np.intp]  # the output row of each selected column


# Projections kept per columns object, oldest dropped first: each filter value asked is a shape
# of its own, and its arrays are the size of the columns.
MAX_SHAPES = 64
_Shape = tuple[tuple[str, ...], str | None, str, str | None, tuple[tuple[str, str], ...]]
_cache: weakref.WeakKeyDictionary[Columns, dict[_Shape, _Projection]] = \
    weakref.WeakKeyDictionary()
_remaps: weakref.WeakKeyDictionary[_Projection, weakref.WeakKeyDictionary[
    _Projection, npt.NDArray[np.intp]]] = weakref.WeakKeyDictionary()
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
        shapes = _cache.setdefault(columns, {})
        if len(shapes) >= MAX_SHAPES:  # filter values are the caller's: bound what they keep
            del shapes[next(iter(shapes))]
        shapes[shape] = found
    return found


@lru_cache(maxsize=4096)
def _day_text(day_ms: int) -> str:
    return sql_date(day_ms)


def add_pieces(totals: Totals, query: Breakdown, pieces: list[tuple[Bucket, int, int]]) -> None:
    """Add each bucket's counts in its [a, b) to `totals`, keyed as the breakdown's rows.

    Without a bucket per day the pieces are first summed in numpy over the key space of the
    first day tally (each other piece's keys mapped into it once per pair of column sets), so
    that Python touches each output row once, not once per piece."""
    if query.bucket == "day":
        for bucket, a, b in pieces:
            _add_per_day(totals, query, bucket, a, b)
        return
    base: _Projection | None = None
    sums: npt.NDArray[Any] = np.zeros(0)
    for bucket, a, b in sorted(pieces, key=lambda piece: not isinstance(piece[0], Tally)):
        projection = _projection(bucket.columns, query)
        if not projection.keys:
            continue
        flat, weights = _flat(projection, bucket, a, b)
        found: npt.NDArray[Any] = np.bincount(flat, weights=weights,
                                              minlength=len(projection.keys))
        if base is None:
            base, sums = projection, found
            continue
        into = _remap(projection, base)
        inside = into >= 0
        np.add.at(sums, into[inside], found[inside])
        _add_cells(totals, projection.keys, found * ~inside)  # keys the base never saw
    if base is not None:
        _add_cells(totals, base.keys, sums)


def _flat(projection: _Projection, bucket: Bucket, a: int, b: int
          ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Each count of [a, b) that passes the filters, and the output row it adds to."""
    if isinstance(bucket, Tally):
        return projection.index, bucket.between(a, b)[projection.selected]
    _, column, n = bucket.between(a, b)
    out = projection.out[column]
    inside = out >= 0
    return out[inside], n[inside]


def _remap(source: _Projection, target: _Projection) -> npt.NDArray[np.intp]:
    """Each of `source`'s output rows' index among `target`'s, -1 when it has none."""
    with _lock:
        found = _remaps.setdefault(source, weakref.WeakKeyDictionary()).get(target)
    if found is None:
        at = {key: i for i, key in enumerate(target.keys)}
        found = np.asarray([at.get(key, -1) for key in source.keys], dtype=np.intp)
        with _lock:
            _remaps.setdefault(source, weakref.WeakKeyDictionary())[target] = found
    return found


def _add_cells(totals: Totals, keys: list[tuple[str, ...]], sums: npt.NDArray[Any]) -> None:
    cells = np.flatnonzero(sums)
    get = totals.get
    # Float sums of integer counts are exact below 2**53.
    for cell, count in zip(cells.tolist(), sums[cells].astype(np.int64).tolist(), strict=True):
        key = keys[cell]
        totals[key] = get(key, 0) + count


def _add_per_day(totals: Totals, query: Breakdown, bucket: Bucket, a: int, b: int) -> None:
    projection = _projection(bucket.columns, query)
    width = len(projection.keys)
    if not width:
        return
    first_day = floor_to(a, DAY_MS)
    flat: npt.NDArray[Any]
    weights: npt.NDArray[Any]
    if isinstance(bucket, Tally):
        first_day, units = bucket.per_unit(a, b)
        days = units.shape[0]
        flat = (np.arange(days, dtype=np.intp)[:, None] * width
                + projection.index[None, :]).ravel()
        weights = units[:, projection.selected].ravel()
    else:
        ts, column, n = bucket.between(a, b)
        out = projection.out[column]
        inside = out >= 0
        day_of = (ts[inside] - first_day) // DAY_MS
        days = int(day_of.max()) + 1 if day_of.size else 1
        flat, weights = day_of * width + out[inside], n[inside]
    sums = np.bincount(flat, weights=weights, minlength=days * width)
    cells = np.flatnonzero(sums)
    get, keys = totals.get, projection.keys
    for cell, count in zip(cells.tolist(), sums[cells].astype(np.int64).tolist(), strict=True):
        day, row = divmod(cell, width)
        key = (_day_text(first_day + day * DAY_MS), *keys[row])
        totals[key] = get(key, 0) + count


def sorted_rows(totals: Totals, query: Breakdown) -> list[Row]:
    """(*key, count) rows in the breakdown's order, at most its limit."""
    rows = [(*key, count) for key, count in totals.items() if count]
    if not query.by_views:
        rows.sort(key=lambda row: row[:-1])
        return rows if query.limit is None else rows[:query.limit]
    if query.limit is not None and query.limit < len(rows):
        return heapq.nsmallest(query.limit, rows, key=_by_views)
    rows.sort(key=_by_views)
    return rows


def _by_views(row: Row) -> tuple[int, Row]:
    return -int(row[-1]), row[:-1]
