"""Split a window into whole UTC days, whole hours and partial-hour edges, and sum them in one
query that reads only the parts the window has: days from the daily rollup, hours from the
hourly rollup, edges from `player_events`.

Every table read costs the engine a fixed overhead however few rows it returns, so an empty
part is left out of the statement rather than read as an empty range: a day-aligned window is
one read of the daily rollup. The statement's text depends only on which parts are present
(a handful of shapes, built once each); the values are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from viewstats.query_api.window import Window

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

_DAYS = """SELECT toString(country) AS country, sum(views) AS views
FROM views_by_country_daily
WHERE client_id = {client_id:UInt32} AND day >= {day_from:Date} AND day < {day_to:Date}{type}
GROUP BY country"""
_HOURS = """SELECT toString(country) AS country, sum(views) AS views
FROM views_by_country_hourly
WHERE client_id = {client_id:UInt32} AND (%s){type}
GROUP BY country"""
_HOUR_RANGE = ("(hour >= {%(side)s_hours_from:DateTime('UTC')}"
               " AND hour < {%(side)s_hours_to:DateTime('UTC')})")
_RAW = """SELECT toString(country) AS country, count() AS views
FROM player_events
WHERE client_id = {client_id:UInt32} AND (%s) AND event = 'watch'{type}
GROUP BY country"""
_RAW_RANGE = ("(ts >= {%(side)s_raw_from:DateTime64(3, 'UTC')}"
              " AND ts < {%(side)s_raw_to:DateTime64(3, 'UTC')})")
_TYPE = " AND type = {type:String}"

@dataclass(frozen=True)
class Plan:
    """Half-open ms ranges: raw head, hourly head, days, hourly tail, raw tail (contiguous)."""
    head_raw: tuple[int, int]
    head_hours: tuple[int, int]
    days: tuple[int, int]
    tail_hours: tuple[int, int]
    tail_raw: tuple[int, int]


def _floor(ms: int, unit: int) -> int:
    return ms // unit * unit


def _ceil(ms: int, unit: int) -> int:
    return -(-ms // unit) * unit


def plan_window(window: Window) -> Plan:
    start, end = window.start_ms, window.end_ms
    hour_start, hour_end = _ceil(start, HOUR_MS), _floor(end, HOUR_MS)
    if hour_start >= hour_end:
        empty = (end, end)
        return Plan((start, end), empty, empty, empty, empty)
    day_start, day_end = _ceil(hour_start, DAY_MS), _floor(hour_end, DAY_MS)
    if day_start >= day_end:
        day_start = day_end = hour_end
    return Plan((start, hour_start), (hour_start, day_start), (day_start, day_end),
                (day_end, hour_end), (hour_end, end))


def _present(part: tuple[int, int]) -> bool:
    return part[0] < part[1]


@cache
def _statement(days: bool, head_hours: bool, tail_hours: bool, head_raw: bool,
               tail_raw: bool, typed: bool) -> str:
    selects = []
    if days:
        selects.append(_DAYS)
    sides = [side for side, present in (("head", head_hours), ("tail", tail_hours)) if present]
    if sides:
        selects.append(_HOURS % " OR ".join(_HOUR_RANGE % {"side": s} for s in sides))
    sides = [side for side, present in (("head", head_raw), ("tail", tail_raw)) if present]
    if sides:
        selects.append(_RAW % " OR ".join(_RAW_RANGE % {"side": s} for s in sides))
    selects = [select.replace("{type}", _TYPE if typed else "") for select in selects]
    if len(selects) == 1:
        return f"{selects[0]}\nORDER BY views DESC, country ASC"
    union = "\nUNION ALL\n".join(selects)
    return (f"SELECT country, sum(views) AS total FROM (\n{union}\n)\n"
            "GROUP BY country\nORDER BY total DESC, country ASC")


def countries_query(plan: Plan, client_id: int,
                    event_type: str | None) -> tuple[str, dict[str, str | int]] | None:
    """The statement and its parameters for the plan, or None when the window is empty."""
    present = (_present(plan.days), _present(plan.head_hours), _present(plan.tail_hours),
               _present(plan.head_raw), _present(plan.tail_raw))
    if not any(present):
        return None
    statement = _statement(*present, event_type is not None)
    params = {name: value for name, value in query_params(plan, client_id, event_type).items()
              if "{" + name + ":" in statement}
    return statement, params


def sql_date(ms: int) -> str:
    """A `Date` parameter's text."""
    return _text(ms, "%Y-%m-%d")


def sql_seconds(ms: int) -> str:
    """A `DateTime('UTC')` parameter's text (whole seconds)."""
    return _text(ms, "%Y-%m-%d %H:%M:%S")


def sql_millis(ms: int) -> str:
    """A `DateTime64(3, 'UTC')` parameter's text."""
    return sql_seconds(ms - ms % 1000) + f".{ms % 1000:03d}"


def _text(ms: int, fmt: str) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(fmt)


def query_params(plan: Plan, client_id: int, event_type: str | None) -> dict[str, str | int]:
    return {
        "client_id": client_id,
        "type": event_type or "",
        "day_from": sql_date(plan.days[0]),
        "day_to": sql_date(plan.days[1]),
        "head_hours_from": sql_seconds(plan.head_hours[0]),
        "head_hours_to": sql_seconds(plan.head_hours[1]),
        "tail_hours_from": sql_seconds(plan.tail_hours[0]),
        "tail_hours_to": sql_seconds(plan.tail_hours[1]),
        "head_raw_from": sql_millis(plan.head_raw[0]),
        "head_raw_to": sql_millis(plan.head_raw[1]),
        "tail_raw_from": sql_millis(plan.tail_raw[0]),
        "tail_raw_to": sql_millis(plan.tail_raw[1]),
    }
