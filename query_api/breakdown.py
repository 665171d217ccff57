"""The one statement builder of the query path (architecture §6, §15): counts of one client's
events over one or more time ranges, broken down by any of the API's fields, exactly.

Every endpoint is a `Breakdown`, and so is every load of the sealed buckets. A range is cut into
whole UTC days (read from a rollup's daily table), whole hours (its hourly twin) and
partial-hour edges (`player_events`), all summed in one statement; a request no rollup covers
reads `player_events` alone (see viewstats/core/rollups.py). With a `bucket` the counts are also
split per UTC day or hour (hourly buckets take whole days from the hourly table, since a daily
row cannot be split), or per quarter-hour or millisecond (read from `player_events`: no rollup
is that fine).

The statement's text depends only on the request's shape (a bounded number of them, built once
each); every value is bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from viewstats.core.rollups import (
    COLUMNS,
    FILTER_COLUMNS,
    RAW_TABLE,
    VIEWER_COLUMN,
    Rollup,
    choose_rollup,
)
from viewstats.core.storage import QuerySettings, Storage
from viewstats.query_api.plan import plan_window, sql_date, sql_millis, sql_seconds
from viewstats.query_api.window import Window

Bucket = Literal["day", "hour", "quarter", "ms"]
Range = tuple[int, int]  # half-open epoch ms
Kind = Literal["daily", "hourly", "raw"]
_KINDS: tuple[Kind, ...] = ("daily", "hourly", "raw")
# bucket -> its expression in the daily, hourly and raw tables (None: that table cannot hold it)
_BUCKETS: dict[Bucket, tuple[str | None, str | None, str]] = {
    "day": ("day", "toDate(hour)", "toDate(ts)"),
    "hour": (None, "hour", "toStartOfHour(ts)"),
    "quarter": (None, None, "toStartOfFifteenMinutes(ts)"),
    "ms": (None, None, "ts"),
}
_BUCKET_TEXT = {"day": "toString(bucket)", "hour": "formatDateTime(bucket, '%Y-%m-%dT%H:00:00Z')"}
# A load takes each bucket as epoch ms (Date and DateTime convert through whole seconds).
_BUCKET_MS = {"day": "toInt64(toUnixTimestamp(toDateTime(bucket, 'UTC'))) * 1000",
              "quarter": "toInt64(toUnixTimestamp(bucket)) * 1000",
              "ms": "toUnixTimestamp64Milli(bucket)"}


@dataclass(frozen=True)
class Breakdown:
    client_id: int
    window: Window
    keys: tuple[str, ...]  # the fields each row is keyed by (see rollups.COLUMNS)
    bucket: Bucket | None = None
    event_type: str | None = None  # `type` filter
    event: str | None = None  # the event counted; None: watch, or every event if keyed by it
    filters: Mapping[str, str] = field(default_factory=dict)  # id / host / country -> value
    by_views: bool = False  # order by views desc, then keys; else by bucket, then keys
    limit: int | None = None
    # Count distinct viewers (of every event unless `event` says which) rather than events.
    distinct: bool = False

    @property
    def rollup(self) -> Rollup | None:
        """The rollup that holds every field the breakdown reads, or None (player_events)."""
        needs_event = "event" in self.keys or (self.event_rule == "bound" and (
            self.distinct or self.event != "watch"))
        fields = {k for k in self.keys if k not in ("type", "event")} | set(self.filters)
        return choose_rollup(fields, needs_event, "distinct" if self.distinct else "sum")

    @property
    def event_rule(self) -> Literal["watch", "bound", "any"]:
        return ("bound" if self.event is not None else "any" if "event" in self.keys
                or self.distinct else "watch")


@dataclass(frozen=True)
class _Shape:
    """What the statement's text depends on."""
    rollup: Rollup | None
    keys: tuple[str, ...]
    bucket: Bucket | None
    typed: bool
    event: Literal["watch", "bound", "any"]
    filters: tuple[str, ...]
    parts: tuple[tuple[Kind, int], ...]  # (table kind, how many ranges) for each table read
    by_views: bool
    limited: bool
    arrays: bool  # one row per key: groupArray of bucket ms and of counts (loads)
    distinct: bool


def _ranges(windows: Sequence[Window], rollup: Rollup | None,
            bucket: Bucket | None) -> dict[Kind, list[Range]]:
    found: dict[Kind, list[Range]] = {kind: [] for kind in _KINDS}
    for window in windows:
        if rollup is None or not rollup.stored or bucket in ("quarter", "ms"):
            found["raw"].append((window.start_ms, window.end_ms))
            continue
        plan = plan_window(window)
        if bucket == "hour":  # whole days from the hourly rollup too
            found["hourly"].append((plan.head_hours[0], plan.tail_hours[1]))
        else:
            found["hourly"] += [plan.head_hours, plan.tail_hours]
            found["daily"].append(plan.days)
        found["raw"] += [plan.head_raw, plan.tail_raw]
    return {kind: [r for r in ranges if r[0] < r[1]] for kind, ranges in found.items()}


_RANGE = {
    "daily": "(day >= {%(p)s_from:Date} AND day < {%(p)s_to:Date})",
    "hourly": "(hour >= {%(p)s_from:DateTime('UTC')} AND hour < {%(p)s_to:DateTime('UTC')})",
    "raw": "(ts >= {%(p)s_from:DateTime64(3, 'UTC')} AND ts < {%(p)s_to:DateTime64(3, 'UTC')})",
}
_FORMATS = {"daily": sql_date, "hourly": sql_seconds, "raw": sql_millis}


def _select(shape: _Shape, kind: Kind, count: int) -> str:
    rollup = shape.rollup
    if rollup is None or kind == "raw":
        table, counts_every_event = RAW_TABLE, True
        # A distinct count keeps each part's set of viewers, merged by the outer statement.
        measure = f"uniqExactState({VIEWER_COLUMN})" if shape.distinct else "count()"
    else:
        table, counts_every_event = rollup.table(kind), rollup.counts_every_event
        # A stored set goes to the outer merge as it is: merging the sets of one part first,
        # then the parts, merged every key twice (a third of a 31-day count's time).
        measure = rollup.measure if shape.distinct else f"sum({rollup.measure})"
    columns = [f"{COLUMNS[k]} AS k_{k}" for k in shape.keys]
    if shape.bucket is not None:
        expression = _BUCKETS[shape.bucket][_KINDS.index(kind)]
        assert expression is not None, (shape.bucket, kind)
        columns.insert(0, expression + " AS bucket")
    where = ["client_id = {client_id:UInt32}",
             "(" + " OR ".join(_RANGE[kind] % {"p": f"{kind}{i}"} for i in range(count)) + ")"]
    if shape.typed:
        where.append("type = {type:String}")
    if counts_every_event:  # else the table counts watch only
        where.extend({"bound": ["event = {event:String}"], "watch": ["event = 'watch'"],
                      "any": []}[shape.event])
    where.extend(f"{FILTER_COLUMNS[name]} = {{{name}:String}}" for name in shape.filters)
    if shape.distinct and table == RAW_TABLE:
        where.append(f"{VIEWER_COLUMN} != 0")  # stored before viewers were keyed
    grouped = [c.rsplit(" AS ", 1)[1] for c in columns]
    aggregates = not (shape.distinct and table != RAW_TABLE)
    return (f"SELECT {', '.join([*columns, measure + ' AS n'])}\nFROM {table}\n"
            f"WHERE {' AND '.join(where)}"
            + (f"\nGROUP BY {', '.join(grouped)}" if grouped and aggregates else ""))


@cache
def _statement(shape: _Shape) -> str:
    union = "\nUNION ALL\n".join(_select(shape, kind, count) for kind, count in shape.parts)
    keys = [f"k_{k}" for k in shape.keys]
    if shape.arrays:
        assert shape.bucket is not None and not shape.distinct
        inner = (f"SELECT bucket, {', '.join(keys)}, sum(n) AS n FROM (\n{union}\n)\n"
                 f"GROUP BY bucket, {', '.join(keys)}")
        return (f"SELECT {', '.join(keys)}, groupArray({_BUCKET_MS[shape.bucket]}),"
                f" groupArray(n)\nFROM (\n{inner}\n)\nGROUP BY {', '.join(keys)}")
    grouped = ["bucket", *keys] if shape.bucket else keys
    columns = [f"{_BUCKET_TEXT[shape.bucket]} AS date"] if shape.bucket else []
    order = ["views DESC", *keys] if shape.by_views else grouped
    total = "uniqExactMerge(n)" if shape.distinct else "sum(n)"
    # Without keys or buckets, one row: the total over the window (0 when nothing is there).
    return (f"SELECT {', '.join([*columns, *keys, total + ' AS views'])}\nFROM (\n{union}\n)"
            + (f"\nGROUP BY {', '.join(grouped)}\nORDER BY {', '.join(order)}" if grouped
               else "")
            + ("\nLIMIT {limit:UInt32}" if shape.limited else ""))


def breakdown_query(query: Breakdown, windows: Sequence[Window] | None = None, *,
                    arrays: bool = False) -> tuple[str, dict[str, str | int]] | None:
    """The statement and its parameters over `windows` (default: the breakdown's own), or None
    when they hold no time at all. `arrays`: one row per key, with the bucket starts (epoch
    ms) and the counts as two arrays, which a load converts with numpy rather than row by
    row."""
    rollup = query.rollup
    ranges = _ranges(windows if windows is not None else (query.window,), rollup, query.bucket)
    if not any(ranges.values()):
        return None
    shape = _Shape(rollup, query.keys, query.bucket, query.event_type is not None,
                   query.event_rule, tuple(sorted(query.filters)),
                   tuple((kind, len(r)) for kind, r in ranges.items() if r),
                   query.by_views, query.limit is not None, arrays, query.distinct)
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


def run_breakdown(storage: Storage, query: Breakdown, settings: QuerySettings | None = None,
                  windows: Sequence[Window] | None = None) -> list[tuple[str | int, ...]]:
    """Rows of (bucket text if any, *key values, views), in the breakdown's order. They cross
    from the engine as columns: a large answer costs a fraction of a microsecond a row."""
    statement = breakdown_query(query, windows)
    if statement is None:
        return []
    columns = storage.query_columns(*statement, settings)
    return list(zip(*(column.tolist() for column in columns), strict=True))
