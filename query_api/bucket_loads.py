"""Load a client's sealed buckets (query_api/sealed.py) from the engine: one statement fills
every bucket a window is missing, however many there are.

- days: every sealed day of the client, from the daily rollup, in one part. A client's whole
  history is a few hundred thousand cells at most, and then every later window of that client
  finds its days here;
- hours: whole UTC days of the hourly rollup, for the days a window's hour runs fall in;
- events: the watch events of whole hours, for the partial-hour edges.

Each part comes back as one row of arrays (bucket, column key, views), so that a large part is
converted by numpy rather than row by row in Python. A column key packs the type's enum value and
the two country bytes into one integer; the distinct keys come with their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from viewstats.core.storage import Storage
from viewstats.query_api.plan import DAY_MS, HOUR_MS, sql_date, sql_millis, sql_seconds
from viewstats.query_api.sealed import Bucket, BucketKey, Columns, HourEvents, Tally

_KEY = "toUInt32(toInt8(type)) * 65536 + reinterpretAsUInt16(country)"
_PART = ("SELECT {tag:String} AS part, groupArray(b), groupArray(k), groupArray(v),"
         " groupUniqArray((k, toString(type), toString(country)))\nFROM (%s)")
_DAYS = ("SELECT toInt64(toUInt16(day)) * 86400000 AS b, " + _KEY + " AS k, type, country,"
         " sum(views) AS v FROM views_by_country_daily"
         " WHERE client_id = {client_id:UInt32} AND day < {days_to:Date}"
         " GROUP BY day, type, country")
_HOURS = ("SELECT toInt64(toUnixTimestamp(hour)) * 1000 AS b, " + _KEY + " AS k, type, country,"
          " sum(views) AS v FROM views_by_country_hourly"
          " WHERE client_id = {client_id:UInt32} AND (%s) GROUP BY hour, type, country")
_HOUR_RANGE = "(hour >= {h%(i)d_from:DateTime('UTC')} AND hour < {h%(i)d_to:DateTime('UTC')})"
_EVENTS = ("SELECT toUnixTimestamp64Milli(ts) AS b, " + _KEY + " AS k, type, country,"
           " toUInt64(1) AS v FROM player_events"
           " WHERE client_id = {client_id:UInt32} AND event = 'watch' AND (%s)")
_EVENT_RANGE = ("(ts >= {e%(i)d_from:DateTime64(3, 'UTC')}"
                " AND ts < {e%(i)d_to:DateTime64(3, 'UTC')})")


@dataclass(frozen=True)
class Wanted:
    """What a window is missing: all sealed days before `days_to` (0: none), the hourly rollup
    of `hour_days` (day starts) up to `sealed_to`, and the events of `event_hours`."""
    days_to: int
    hour_days: tuple[int, ...]
    event_hours: tuple[int, ...]
    sealed_to: int


@cache
def _statement(days: bool, hour_days: int, event_hours: int) -> str:
    parts = []
    if days:
        parts.append(_PART.replace("{tag:String}", "'d'") % _DAYS)
    if hour_days:
        ranges = " OR ".join(_HOUR_RANGE % {"i": i} for i in range(hour_days))
        parts.append(_PART.replace("{tag:String}", "'h'") % (_HOURS % ranges))
    if event_hours:
        ranges = " OR ".join(_EVENT_RANGE % {"i": i} for i in range(event_hours))
        parts.append(_PART.replace("{tag:String}", "'e'") % (_EVENTS % ranges))
    return "\nUNION ALL\n".join(parts)


def load(storage: Storage, client_id: int, wanted: Wanted) -> dict[BucketKey, Bucket]:
    """The buckets `wanted` names, keyed as SealedBuckets keeps them."""
    params: dict[str, str | int] = {"client_id": client_id, "days_to": sql_date(wanted.days_to)}
    for i, day in enumerate(wanted.hour_days):
        params[f"h{i}_from"] = sql_seconds(day)
        params[f"h{i}_to"] = sql_seconds(min(day + DAY_MS, wanted.sealed_to))
    for i, hour in enumerate(wanted.event_hours):
        params[f"e{i}_from"] = sql_millis(hour)
        params[f"e{i}_to"] = sql_millis(hour + HOUR_MS)
    statement = _statement(wanted.days_to > 0, len(wanted.hour_days), len(wanted.event_hours))
    params = {name: value for name, value in params.items() if "{" + name + ":" in statement}
    buckets: dict[BucketKey, Bucket] = {}
    for part, stamps, keys, views, names in storage.query(statement, params):
        columns, column = _columns(keys, names)
        b = np.asarray(stamps, dtype=np.int64)
        v = np.asarray(views, dtype=np.int64)
        if part == "d":
            buckets[("d", client_id, 0)] = _tally(0, wanted.days_to, DAY_MS, columns, b, column, v)
        elif part == "h":
            for day in wanted.hour_days:
                end = min(day + DAY_MS, wanted.sealed_to)
                inside = (b >= day) & (b < end)
                buckets[("h", client_id, day)] = _tally(
                    day, end, HOUR_MS, columns, b[inside], column[inside], v[inside])
        else:
            order = np.argsort(b, kind="stable")
            b, column = b[order], column[order]
            for hour in wanted.event_hours:
                first, end = np.searchsorted(b, [hour, hour + HOUR_MS]).tolist()
                buckets[("e", client_id, hour)] = HourEvents(
                    hour, hour + HOUR_MS, b[first:end].copy(), column[first:end].copy(), columns)
    return buckets


def _columns(keys: Sequence[int],
             names: Sequence[Sequence[Any]]) -> tuple[Columns, np.ndarray[Any, Any]]:
    named = sorted((int(key), str(kind), str(country)) for key, kind, country in names)
    order = np.asarray([key for key, _, _ in named], dtype=np.int64)
    column = np.searchsorted(order, np.asarray(keys, dtype=np.int64))
    return Columns(tuple(kind for _, kind, _ in named),
                   tuple(country for _, _, country in named)), column


def _tally(covers_from: int, covers_to: int, unit: int, columns: Columns,
           stamps: np.ndarray[Any, Any], column: np.ndarray[Any, Any],
           views: np.ndarray[Any, Any]) -> Tally:
    start = int(stamps.min()) if stamps.size else covers_to
    start = max(min(start, covers_to), covers_from)
    units = (covers_to - start) // unit
    grid = np.zeros((units + 1, len(columns.types)), dtype=np.int64)
    np.add.at(grid, ((stamps - start) // unit + 1, column), views)
    return Tally(covers_from, covers_to, start, unit, columns, np.cumsum(grid, axis=0))
