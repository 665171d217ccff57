"""Which table family answers a breakdown: a pair of rollups (hourly, daily) when one holds every
field the request filters or groups by, else `player_events` alone.

A rollup without an `event` column counts only `watch` (views); `events_by_country_*` counts
every event. Two of `id`, `host` and `country` together are in no rollup: such a request reads
`player_events` over its whole window (README, "Statistics endpoints").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# The API's field -> the column expression that holds it, in every table of this module.
COLUMNS = {"type": "toString(type)", "host": "toString(host)", "country": "toString(country)",
           "event": "toString(event)", "id": "video_id"}
# The API's filter -> the column it compares (a bound parameter of the filter's name).
FILTER_COLUMNS = {"id": "video_id", "host": "host", "country": "country"}


@dataclass(frozen=True)
class Rollup:
    hourly: str
    daily: str
    measure: str  # the column summed
    fields: frozenset[str]  # the API fields it holds besides type and time
    has_event: bool  # counts every event (with an `event` column), not only watch


RAW_TABLE = "player_events"
# Smallest first for a request that needs none of their fields: a client's pages sit on a few
# hosts, its viewers in dozens of countries, its views on many videos.
ROLLUPS = (
    Rollup("views_by_host_hourly", "views_by_host_daily", "views",
           frozenset({"host"}), has_event=False),
    Rollup("views_by_country_hourly", "views_by_country_daily", "views",
           frozenset({"country"}), has_event=False),
    Rollup("views_by_video_hourly", "views_by_video_daily", "views",
           frozenset({"id"}), has_event=False),
    Rollup("events_by_country_hourly", "events_by_country_daily", "events",
           frozenset({"country"}), has_event=True),
)


def choose_rollup(fields: Collection[str], needs_event: bool) -> Rollup | None:
    """The first rollup holding `fields` (and every event when `needs_event`), or None."""
    for rollup in ROLLUPS:
        if set(fields) <= rollup.fields and (rollup.has_event or not needs_event):
            return rollup
    return None
