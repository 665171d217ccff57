"""Split a window into whole UTC days, whole hours and partial-hour edges, and sum them in one
query: days from the daily rollup, hours from the hourly rollup, edges from `player_events`.

Every part is always present with possibly empty ranges, so the SQL text never changes and
only bound parameters vary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from viewstats.query_api.window import Window

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

COUNTRIES_SQL = """
SELECT country, sum(views) AS total
FROM
(
    SELECT toString(country) AS country, sum(views) AS views
    FROM views_by_country_daily
    WHERE client_id = {client_id:UInt32}
      AND day >= {day_from:Date} AND day < {day_to:Date}
      AND ({type:String} = '' OR type = {type:String})
    GROUP BY country
    UNION ALL
    SELECT toString(country) AS country, sum(views) AS views
    FROM views_by_country_hourly
    WHERE client_id = {client_id:UInt32}
      AND ((hour >= {head_hours_from:DateTime('UTC')} AND hour < {head_hours_to:DateTime('UTC')})
        OR (hour >= {tail_hours_from:DateTime('UTC')} AND hour < {tail_hours_to:DateTime('UTC')}))
      AND ({type:String} = '' OR type = {type:String})
    GROUP BY country
    UNION ALL
    SELECT toString(country) AS country, count() AS views
    FROM player_events
    WHERE client_id = {client_id:UInt32}
      AND ((ts >= {head_raw_from:DateTime64(3, 'UTC')} AND ts < {head_raw_to:DateTime64(3, 'UTC')})
        OR (ts >= {tail_raw_from:DateTime64(3, 'UTC')} AND ts < {tail_raw_to:DateTime64(3, 'UTC')}))
      AND event = 'watch'
      AND ({type:String} = '' OR type = {type:String})
    GROUP BY country
)
GROUP BY country
HAVING total > 0
ORDER BY total DESC, country ASC
"""


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


def _text(ms: int, fmt: str) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(fmt)


def _ms_text(ms: int) -> str:
    return _text(ms - ms % 1000, "%Y-%m-%d %H:%M:%S") + f".{ms % 1000:03d}"


def query_params(plan: Plan, client_id: int, event_type: str | None) -> dict[str, str | int]:
    hour = "%Y-%m-%d %H:%M:%S"
    return {
        "client_id": client_id,
        "type": event_type or "",
        "day_from": _text(plan.days[0], "%Y-%m-%d"),
        "day_to": _text(plan.days[1], "%Y-%m-%d"),
        "head_hours_from": _text(plan.head_hours[0], hour),
        "head_hours_to": _text(plan.head_hours[1], hour),
        "tail_hours_from": _text(plan.tail_hours[0], hour),
        "tail_hours_to": _text(plan.tail_hours[1], hour),
        "head_raw_from": _ms_text(plan.head_raw[0]),
        "head_raw_to": _ms_text(plan.head_raw[1]),
        "tail_raw_from": _ms_text(plan.tail_raw[0]),
        "tail_raw_to": _ms_text(plan.tail_raw[1]),
    }
