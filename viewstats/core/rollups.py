"""The registry of rollups: every pre-aggregated table family the query path reads, in one place.

It lives in the base because the schema and the query path both read it, and those rooms import
nothing of each other. The planner (query_api/planner.py) picks a rollup for a breakdown and
builds its statement from these entries, the sealed buckets key their columns by them, the
cluster DDL shards their tables by `client_id`, and tests/test_rollups.py checks every entry
against a migrated database (its tables' columns and the materialized views that feed them).
The migrations that create the tables stay as they were written (schema/0003, 0004, 0008-0010).

A rollup without an `event` column counts only `watch` (views); `events_by_country_*` counts
every event. `host` with `country` is a rollup without tables, read from `player_events` and
kept in memory; `id` with `host` or `country` is in no rollup: such a request reads
`player_events` over its whole window (README, "Statistics endpoints").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

# The API's field -> the column expression that holds it, in every table of this module.
COLUMNS = {"type": "toString(type)", "host": "toString(host)", "country": "toString(country)",
           "event": "toString(event)", "id": "video_id"}
# The API's field -> the column that holds it in the tables (filters compare it to a bound
# parameter of the field's name).
FIELD_COLUMNS = {"type": "type", "event": "event", "id": "video_id", "host": "host",
                 "country": "country"}
FILTER_COLUMNS = {name: FIELD_COLUMNS[name] for name in ("id", "host", "country")}
# How a measure combines over time: a sum adds, so a window is any union of its units. A
# distinct count (the audience issue's unique viewers) would keep a mergeable state per unit
# instead, and the sealed buckets would merge states rather than subtract prefix sums; no rollup
# has one yet, so the buckets only take sums (sealed.py).
MeasureKind = Literal["sum", "distinct"]
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
)


def choose_rollup(fields: Collection[str], needs_event: bool) -> Rollup | None:
    """The first rollup holding `fields` (and every event when `needs_event`), or None."""
    for rollup in ROLLUPS:
        if set(fields) <= set(rollup.fields) and (rollup.counts_every_event or not needs_event):
            return rollup
    return None


def rollup_tables() -> tuple[str, ...]:
    """Every table of every stored rollup (the cluster DDL shards each by client)."""
    return tuple(rollup.table(grain) for rollup in ROLLUPS if rollup.stored for grain in GRAINS)
