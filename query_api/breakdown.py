"""Counts of one client's events in a window, broken down by any of the API's fields, exactly:
whole UTC days from a daily rollup, whole hours from its hourly twin and the partial-hour edges
from `player_events`, summed in one statement (as for countries, architecture §6). A request no
rollup covers reads `player_events` alone over the window (see `rollups`).

With a `bucket` the counts are also split per UTC day or hour; hourly buckets take whole days
from the hourly rollup, since a daily row cannot be split. The statement's text depends only on
the request's shape (a bounded number of them, built once each); every value is bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from viewstats.core.storage import QuerySettings, Storage
from viewstats.query_api.plan import plan_window, sql_date, sql_millis, sql_seconds
from viewstats.core.rollups import COLUMNS, FILTER_COLUMNS, RAW_TABLE, Rollup, choose_rollup
from viewstats.query_api.window import Window

Bucket = Literal["day", "hour"]
Range = tuple[int, int]  # half-open epoch ms
_BUCKETS = {  # bucket -> (daily, hourly, raw) expressions; a daily row has no hour
    "day": ("day", "toDate(hour)", "toDate(ts)"),
    "hour": ("", "hour", "toStartOfHour(ts)"),
}
_BUCKET_TEXT = {"day": "toString(bucket)", "hour": "formatDateTime(bucket, '%Y-%m-%dT%H:00:00Z')"}


@dataclass(frozen=True)
class Breakdown:
    client_id: int
    window: Window
    keys: tuple[str, ...]  # the fields each row is keyed by (see rollups.COLUMNS), at least one
    bucket: Bucket | None = None
    event_type: str | None = None  # `type` filter
    event: str | None = None  # the event counted; None: watch, or every event if keyed by it
    filters: Mapping[str, str] = field(default_factory=dict)  # id / host / country -> value
    by_views: bool = False  # order by views desc, then keys; else by bucket, then keys
    limit: int | None = None


@dataclass(frozen=True)
class _Shape:
    """What the statement's text depends on."""
    rollup: Rollup | None
    keys: tuple[str, ...]
    bucket: Bucket | None
    typed: bool
    event: Literal["watch", "bound", "any"]
    filters: tuple[str, ...]
    parts: tuple[tuple[str, int], ...]  # (kind, how many ranges) for each table read
    by_views: bool
    limited: bool


def _ranges(window: Window, rollup: Rollup | None,
            bucket: Bucket | None) -> dict[str, list[Range]]:
    if rollup is None:
        return {"raw": [(window.start_ms, window.end_ms)]}
    plan = plan_window(window)
    if bucket == "hour":  # whole days from the hourly rollup too
        hours = [(plan.head_hours[0], plan.tail_hours[1])]
        days: list[Range] = []
    else:
        hours, days = [plan.head_hours, plan.tail_hours], [plan.days]
    parts = {"daily": days, "hourly": hours, "raw": [plan.head_raw, plan.tail_raw]}
    return {kind: [r for r in ranges if r[0] < r[1]] for kind, ranges in parts.items()}


_RANGE = {
    "daily": "(day >= {%(p)s_from:Date} AND day < {%(p)s_to:Date})",
    "hourly": "(hour >= {%(p)s_from:DateTime('UTC')} AND hour < {%(p)s_to:DateTime('UTC')})",
    "raw": "(ts >= {%(p)s_from:DateTime64(3, 'UTC')} AND ts < {%(p)s_to:DateTime64(3, 'UTC')})",
}


def _select(shape: _Shape, kind: str, count: int) -> str:
    rollup = shape.rollup
    if rollup is None or kind == "raw":
        table, measure, has_event = RAW_TABLE, "count()", True
    else:
        table, has_event = getattr(rollup, kind), rollup.counts_every_event
        measure = f"sum({rollup.measure})"
    columns = [f"{COLUMNS[k]} AS k_{k}" for k in shape.keys]
    if shape.bucket is not None:
        columns.insert(0, _BUCKETS[shape.bucket][("daily", "hourly", "raw").index(kind)]
                       + " AS bucket")
    where = ["client_id = {client_id:UInt32}",
             "(" + " OR ".join(_RANGE[kind] % {"p": f"{kind}{i}"} for i in range(count)) + ")"]
    if shape.typed:
        where.append("type = {type:String}")
    if has_event:  # else the table counts watch only
        where.extend({"bound": ["event = {event:String}"], "watch": ["event = 'watch'"],
                      "any": []}[shape.event])
    where.extend(f"{FILTER_COLUMNS[name]} = {{{name}:String}}" for name in shape.filters)
    grouped = [c.rsplit(" AS ", 1)[1] for c in columns]
    return (f"SELECT {', '.join([*columns, measure + ' AS n'])}\nFROM {table}\n"
            f"WHERE {' AND '.join(where)}"
            + (f"\nGROUP BY {', '.join(grouped)}" if grouped else ""))


@cache
def _statement(shape: _Shape) -> str:
    union = "\nUNION ALL\n".join(_select(shape, kind, count) for kind, count in shape.parts)
    keys = [f"k_{k}" for k in shape.keys]
    grouped = ["bucket", *keys] if shape.bucket else keys
    columns = [f"{_BUCKET_TEXT[shape.bucket]} AS date"] if shape.bucket else []
    order = ["views DESC", *keys] if shape.by_views else grouped
    return (f"SELECT {', '.join([*columns, *keys, 'sum(n) AS views'])}\nFROM (\n{union}\n)\n"
            f"GROUP BY {', '.join(grouped)}\nORDER BY {', '.join(order)}"
            + ("\nLIMIT {limit:UInt32}" if shape.limited else ""))


_FORMATS = {"daily": sql_date, "hourly": sql_seconds, "raw": sql_millis}


def breakdown_query(query: Breakdown) -> tuple[str, dict[str, str | int]] | None:
    """The statement and its parameters, or None when the window holds no time at all."""
    needs_event = "event" in query.keys or query.event not in (None, "watch")
    fields = {k for k in query.keys if k not in ("type", "event")} | set(query.filters)
    rollup = choose_rollup(fields, needs_event)
    ranges = _ranges(query.window, rollup, query.bucket)
    if not any(ranges.values()):
        return None
    event: Literal["watch", "bound", "any"] = (
        "bound" if query.event is not None else "any" if "event" in query.keys
        else "watch")
    shape = _Shape(rollup, query.keys, query.bucket, query.event_type is not None, event,
                   tuple(sorted(query.filters)),
                   tuple((kind, len(r)) for kind, r in ranges.items() if r),
                   query.by_views, query.limit is not None)
    params: dict[str, str | int] = {"client_id": query.client_id, **query.filters}
    if query.event_type is not None:
        params["type"] = query.event_type
    if query.event is not None:
        params["event"] = query.event
    if query.limit is not None:
        params["limit"] = query.limit
    for kind, kind_ranges in ranges.items():
        for i, (start, end) in enumerate(kind_ranges):
            params[f"{kind}{i}_from"] = _FORMATS[kind](start)
            params[f"{kind}{i}_to"] = _FORMATS[kind](end)
    return _statement(shape), params


def run_breakdown(storage: Storage, query: Breakdown, settings: QuerySettings | None = None
                  ) -> list[tuple[str | int, ...]]:
    """Rows of (bucket text if any, *key values, views), in the breakdown's order."""
    statement = breakdown_query(query)
    if statement is None:
        return []
    return [(*(str(v) for v in row[:-1]), int(row[-1]))
            for row in storage.query(*statement, settings)]
