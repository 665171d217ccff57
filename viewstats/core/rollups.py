"""The registry of rollups: every pre-aggregated table family the query path reads, in one place.

It lives in the base because the schema and the query path both read it, and those rooms import
nothing of each other. The planner (query_api/planner.py) picks a rollup for a breakdown and
builds its statement from these entries, the sealed buckets key their columns by them, the
cluster DDL shards their tables by `client_id`, and tests/test_rollups.py checks every entry
against a migrated database (its tables' columns and the materialized views that feed them).
The migrations that create the tables stay as they were written (schema/0003, 0004, 0008-0010,
0012).

A sum rollup without an `event` column counts only `watch` (views); `events_by_country_*`
counts every event, and so does the distinct count of viewers (without an `event` column).
`host` with `country` is a rollup without tables, read from `player_events` and kept in memory;
`id` with `host` or `country` is in no rollup: such a request reads `player_events` over its
whole window (README, "Statistics endpoints").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

# The API's field -> the column expression that holds it, in every table of this module.
COLUMNS = {"type": "toString(type)", "host": "toString(host)", "country": "toString(country)",
           "event": "toString(event)", "id": "video_id", "browser": "toString(browser)",
           "os": "toString(os)", "platform": "toString(platform)", "region": "toString(region)",
           "embed_url": "embed_url"}
# The API's field -> the column that holds it in the tables (filters compare it to a bound
# parameter of the field's name).
FIELD_COLUMNS = {"type": "type", "event": "event", "id": "video_id", "host": "host",
                 "country": "country", "browser": "browser", "os": "os", "platform": "platform",
                 "region": "region", "embed_url": "embed_url"}
FILTER_COLUMNS = {name: FIELD_COLUMNS[name] for name in ("id", "host", "country")}
# How a measure combines over time: a sum adds, so a window is any union of its units. A
# distinct count (unique viewers) keeps a mergeable state per unit instead (an exact set of
# viewer keys), merged in the statement; the sealed buckets only take sums (sealed.py).
MeasureKind = Literal["sum", "distinct"]
VIEWER_COLUMN = "viewer"  # what a distinct count counts; 0 is no key and never counted
RAW_TABLE = "player_events"
GRAINS = ("hourly", "daily")  # the tables of every rollup: <name>_hourly, <name>_daily


@dataclass(frozen=True)
class Rollup:
    name: str  # tables <name>_hourly (column `hour`) and <name>_daily (column `day`)
    fields: tuple[str, ...]  # the API fields it holds besides type, event and time
    measure: str  # the column that holds the count
    counts_every_event: bool  # has an `event` column; else it counts watch only
    measure_kind: MeasureKind = "sum"
    # False: no tables; the engine counts it from player_events, and the API keeps it in
    # memory like any rollup once read (query_api/sealed.py). For a pair of fields whose
    # table would cost every insert another materialized view to serve rare requests.
    stored: bool = True

    @property
    def hourly(self) -> str:
        return f"{self.name}_hourly"

    @property
    def daily(self) -> str:
        return f"{self.name}_daily"

    @property
    def keys(self) -> tuple[str, ...]:
        """The API fields of its key columns, in table order (after client_id and time)."""
        return ("event", "type", *self.fields) if self.counts_every_event \
            else ("type", *self.fields)

    def table(self, grain: str) -> str:
        return f"{self.name}_{grain}"


# Smallest first for a request that needs none of their fields: a client's pages sit on a few
# hosts, its viewers in dozens of countries, its views on many videos.
ROLLUPS = (
    Rollup("views_by_host", ("host",), "views", counts_every_event=False),
    Rollup("views_by_country", ("country",), "views", counts_every_event=False),
    Rollup("views_by_video", ("id",), "views", counts_every_event=False),
    Rollup("events_by_country", ("country",), "events", counts_every_event=True),
    # A client's pages sit on a few hosts: host by country stays small in memory, and serves
    # countries of a host and hosts of a country. Pairs with `id` would be a client's videos
    # times its countries, too many to keep, and stay on the engine.
    Rollup("views_by_host_country", ("host", "country"), "views", counts_every_event=False,
           stored=False),
    # The audience (schema/0012): browser, os and platform share one rollup, so that ingest
    # pays one materialized view per grain for the three.
    Rollup("views_by_device", ("browser", "os", "platform"), "views", counts_every_event=False),
    Rollup("views_by_region", ("country", "region"), "views", counts_every_event=False),
    Rollup("views_by_embed", ("embed_url",), "views", counts_every_event=False),
    # Distinct viewers of every event. It has no `event` column (a set of viewers cannot be
    # split by event after the fact), so a count that filters or groups by event, or by any
    # field but `type`, reads player_events; the request that it serves needs no event filter.
    Rollup("viewers", (), "viewers", counts_every_event=False, measure_kind="distinct"),
)


def choose_rollup(fields: Collection[str], needs_event: bool,
                  measure_kind: MeasureKind = "sum") -> Rollup | None:
    """The first rollup of `measure_kind` holding `fields` (and an `event` column when
    `needs_event`), or None."""
    for rollup in ROLLUPS:
        if rollup.measure_kind == measure_kind and set(fields) <= set(rollup.fields) \
                and (rollup.counts_every_event or not needs_event):
            return rollup
    return None


def rollup_tables() -> tuple[str, ...]:
    """Every table of every stored rollup (the cluster DDL shards each by client)."""
    return tuple(rollup.table(grain) for rollup in ROLLUPS if rollup.stored for grain in GRAINS)
