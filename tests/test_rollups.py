"""The rollup registry (viewstats/core/rollups.py) says what the migrations made: for every
rollup and grain, on the migrated test database, the table holds client_id, the time column,
the key columns of `rollup.keys` (typed as in `player_events`) and the measure, in that order;
a materialized view `<table>_mv` feeds it from `player_events`, counting `watch` only unless the
rollup counts every event; and no table that looks like a rollup is missing from the registry.
The planner builds its statements from the registry alone, so an entry that disagrees with the
tables would answer with another table's counts, or fail only when a request first needs it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest

from viewstats.core.rollups import FIELD_COLUMNS, GRAINS, RAW_TABLE, ROLLUPS, Rollup, rollup_tables
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

STORED = [rollup for rollup in ROLLUPS if rollup.stored]  # the others have no tables
TIME_COLUMNS = {"hourly": ("hour", "DateTime('UTC')"), "daily": ("day", "Date")}
# A sum counts into UInt64; a distinct count keeps the exact set of viewer keys.
MEASURE_TYPES = {"sum": "UInt64", "distinct": "AggregateFunction(uniqExact, UInt64)"}
# What a materialized view counts into the measure, and which rows it takes (beyond its event).
MEASURES = {"sum": ("count() AS {}", None), "distinct": ("uniqExactState(viewer) AS {}",
                                                       "viewer != 0")}
Columns = list[tuple[str, str]]


def _columns(storage: Storage, table: str) -> Columns:
    return [(str(name), str(kind)) for name, kind in storage.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = {table:String} ORDER BY position", {"table": table})]


def _expected_columns(storage: Storage, rollup: Rollup, grain: str) -> Columns:
    raw = dict(_columns(storage, RAW_TABLE))
    keys = [(FIELD_COLUMNS[field], raw[FIELD_COLUMNS[field]]) for field in rollup.keys]
    return [("client_id", raw["client_id"]), TIME_COLUMNS[grain], *keys,
            (rollup.measure, MEASURE_TYPES[rollup.measure_kind])]


def problems(storage: Storage, rollup: Rollup, grain: str) -> list[str]:
    """How the migrated database disagrees with `rollup`'s table at `grain` and its view."""
    table = rollup.table(grain)
    expected = _expected_columns(storage, rollup, grain)
    found = _columns(storage, table)
    if not found:
        return [f"{table}: no such table"]
    wrong = [] if found == expected else [f"{table}: columns {found}, registry says {expected}"]
    views = storage.query(
        "SELECT engine, create_table_query, as_select FROM system.tables "
        "WHERE database = currentDatabase() AND name = {name:String}", {"name": f"{table}_mv"})
    if not views or views[0][0] != "MaterializedView":
        return [*wrong, f"{table}_mv: no materialized view"]
    _, create, select = (str(value) for value in views[0])
    database = str(storage.query("SELECT currentDatabase()")[0][0])
    source = re.search(r" FROM (\S+)", select)
    where = re.search(r" WHERE (.+?) GROUP BY ", select)
    measure, taken = MEASURES[rollup.measure_kind]
    counted = taken or (None if rollup.counts_every_event else "event = 'watch'")
    checks = {
        f"writes to {table}": f" TO {database}.{table} " in create,
        f"reads {RAW_TABLE}": source is not None and source[1] == f"{database}.{RAW_TABLE}",
        f"filters {counted or 'no event'}": (where[1] if where else None) == counted,
        f"counts into {rollup.measure}": measure.format(rollup.measure) in select,
        # Its rows go into the table by column name: one it does not give would be a default.
        "gives every column": _describe(storage, select) == expected,
    }
    return [*wrong, *(f"{table}_mv: {select}: not {check}" for check, ok in checks.items()
                      if not ok)]


def _describe(storage: Storage, select: str) -> Columns:
    return [(str(row[0]), str(row[1])) for row in storage.query(f"DESCRIBE TABLE ({select})")]


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("rollup", STORED, ids=lambda rollup: rollup.name)
def test_every_rollup_is_as_the_registry_says(storage: Storage, rollup: Rollup,
                                              grain: str) -> None:
    assert problems(storage, rollup, grain) == []


# Ways an entry can disagree with its tables; each must be found, for every entry.
WRONG: dict[str, Callable[[Rollup], Rollup]] = {
    "events counted": lambda r: replace(r, counts_every_event=not r.counts_every_event),
    "fields": lambda r: replace(r, fields=(*r.fields, "id" if "id" not in r.fields else "host")),
    "measure": lambda r: replace(r, measure=f"{r.measure}_total"),
    "name": lambda r: replace(r, name=f"{r.name}_v2"),
}


@pytest.mark.parametrize("wrong", list(WRONG))
@pytest.mark.parametrize("rollup", STORED, ids=lambda rollup: rollup.name)
def test_an_entry_that_disagrees_with_its_tables_is_found(storage: Storage, rollup: Rollup,
                                                         wrong: str) -> None:
    for grain in GRAINS:
        assert problems(storage, WRONG[wrong](rollup), grain), (wrong, grain)


def test_no_rollup_table_is_missing_from_the_registry(storage: Storage) -> None:
    tables = {str(name) for (name,) in storage.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")}
    looks_like_rollups = {name for name in tables if name.endswith(tuple(f"_{g}" for g in GRAINS))}
    assert looks_like_rollups, "the migrations made rollups"
    assert looks_like_rollups == set(rollup_tables())
