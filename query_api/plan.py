"""Split a window into whole UTC days, whole hours and partial-hour edges: the parts the
planner (query_api/breakdown.py) reads from a rollup's daily table, its hourly table and
`player_events`. Every table read costs the engine a fixed overhead however few rows it
returns, so an empty part is left out of the statement rather than read as an empty range: a
day-aligned window is one read of a daily table. Also the text of the time parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from viewstats.query_api.window import Window

QUARTER_MS = 900_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Plan:
    """Half-open ms ranges: raw head, hourly head, days, hourly tail, raw tail (contiguous)."""
    head_raw: tuple[int, int]
    head_hours: tuple[int, int]
    days: tuple[int, int]
    tail_hours: tuple[int, int]
    tail_raw: tuple[int, int]


def floor_to(ms: int, unit: int) -> int:
    return ms // unit * unit


def ceil_to(ms: int, unit: int) -> int:
    return -(-ms // unit) * unit


def plan_window(window: Window) -> Plan:
    start, end = window.start_ms, window.end_ms
    hour_start, hour_end = ceil_to(start, HOUR_MS), floor_to(end, HOUR_MS)
    if hour_start >= hour_end:
        empty = (end, end)
        return Plan((start, end), empty, empty, empty, empty)
    day_start, day_end = ceil_to(hour_start, DAY_MS), floor_to(hour_end, DAY_MS)
    if day_start >= day_end:
        day_start = day_end = hour_end
    return Plan((start, hour_start), (hour_start, day_start), (day_start, day_end),
                (day_end, hour_end), (hour_end, end))


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
