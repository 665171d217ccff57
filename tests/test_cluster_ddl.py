"""The cluster variant of the schema (architecture §4), generated from the migrations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy.typing as npt
import pytest

from viewstats.core.storage import Params, QuerySettings, Row
from viewstats.core.storage.write_health import WriteHealth
from viewstats.schema.cluster import (
    BOOKKEEPING,
    SHARDING_KEYS,
    ClusterNameError,
    cluster_script,
    cluster_statements,
    migrate_cluster,
    translate,
)
from viewstats.schema.migrations import load_migrations

CLUSTER = "views_cluster"
STATEMENTS = [s for _, statements in cluster_statements(CLUSTER) for s in statements]
TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER `(\S+)`.*?ENGINE = (\w+)\((.*?)\)"
                   r"\s*(?:\n|$)", re.DOTALL)
TRUNCATE = re.compile(r"^TRUNCATE TABLE (\w+)_local ON CLUSTER `(\S+)`$")
BACKFILL = re.compile(r"^INSERT INTO (\w+) SETTINGS (.*?)\n(SELECT .*)$", re.DOTALL)
ALTER = re.compile(r"^ALTER TABLE (\w+) ON CLUSTER `(\S+)`\s+ADD COLUMN IF NOT EXISTS ", re.DOTALL)
VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) ON CLUSTER `(\S+)` TO (\w+) AS"
                  r"\s+(.*)$", re.DOTALL)
SINGLE_SERVER_TABLES = {m[1] for migration in load_migrations() for s in migration.statements
                        if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))}


def _tables() -> dict[str, tuple[str, str]]:
    """name -> (engine, engine arguments) of every table the cluster script creates."""
    return {m[1]: (m[3], m[4]) for s in STATEMENTS if (m := TABLE.match(s))}


def test_every_statement_creates_a_table_or_a_view_on_the_cluster() -> None:
    """... or empties a rollup on the cluster and backfills it (through any one node)."""
    for statement in STATEMENTS:
        if BACKFILL.match(statement):
            continue
        match = TABLE.match(statement) or VIEW.match(statement) or TRUNCATE.match(statement) \
            or ALTER.match(statement)
        assert match is not None, statement
        assert match[2] == CLUSTER


def test_backfills_empty_the_local_tables_and_copy_through_the_distributed_ones() -> None:
    backfills = [m for s in STATEMENTS if (m := BACKFILL.match(s))]
    emptied = [m[1] for s in STATEMENTS if (m := TRUNCATE.match(s))]
    assert [m[1] for m in backfills] == emptied == [
        f"{name}_{grain}" for name in ("views_by_video", "views_by_host", "events_by_country",
                                       "views_by_device", "views_by_region", "views_by_embed")
        for grain in ("hourly", "daily")]
    for backfill in backfills:
        # Synchronous: the migration is recorded only once the copied rows are stored.
        assert backfill[2] == "insert_deduplicate = 0, distributed_foreground_insert = 1"
        assert "_local" not in backfill[3]


def test_every_table_is_replicated_behind_a_distributed_table_of_its_name() -> None:
    tables = _tables()
    assert tables[BOOKKEEPING][0] == "ReplicatedMergeTree"
    for name in SINGLE_SERVER_TABLES - {BOOKKEEPING}:
        engine, args = tables[f"{name}_local"]
        assert engine.startswith("Replicated") and engine.endswith("MergeTree"), name
        assert args.startswith(f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', "
                               "'{replica}'")
        assert tables[name] == ("Distributed", f"'{CLUSTER}', currentDatabase(), {name}_local, "
                                               f"{SHARDING_KEYS[name]}")
    assert set(tables) == SINGLE_SERVER_TABLES | {f"{t}_local" for t in SINGLE_SERVER_TABLES
                                                  if t != BOOKKEEPING}


def test_engine_arguments_and_keeper_paths_are_kept_apart() -> None:
    tables = _tables()
    assert tables["views_by_country_daily_local"][1].endswith("'{replica}', views")
    assert tables["consumer_batches_local"][1].endswith("'{replica}', recorded_at")
    # One node of every shard holds the whole migrations list: a path without {shard}.
    assert tables[BOOKKEEPING][1] == (f"'/clickhouse/tables/all/{{database}}/{BOOKKEEPING}', "
                                      "'{shard}-{replica}'")
    paths = [args.split(",")[0] for engine, args in tables.values() if engine != "Distributed"]
    assert len(paths) == len(set(paths))


def test_rollups_shard_by_the_key_of_the_events_they_are_made_from() -> None:
    rollups = {t for t in SINGLE_SERVER_TABLES if t.endswith(("_hourly", "_daily"))}
    assert len(rollups) == 16
    assert {SHARDING_KEYS[t] for t in {"player_events", *rollups}} == {"cityHash64(client_id)"}


def test_views_read_and_write_the_local_tables() -> None:
    views = [m for s in STATEMENTS if (m := VIEW.match(s))]
    assert {v[1] for v in views} == {f"{t}_mv" for t in SINGLE_SERVER_TABLES
                                     if t.endswith(("_hourly", "_daily"))}
    for view in views:
        assert view[3] == view[1].removesuffix("_mv") + "_local"
        assert re.findall(r"\bFROM\s+(\w+)", view[4]) == ["player_events_local"]


def test_replicated_deduplication_replaces_the_single_server_window() -> None:
    script = cluster_script(CLUSTER)
    assert "non_replicated_deduplication_window" not in script
    for name in ("player_events", *(t for t in SINGLE_SERVER_TABLES
                                    if t.endswith(("_hourly", "_daily")))):
        (statement,) = [s for s in STATEMENTS if s.startswith(
            f"CREATE TABLE IF NOT EXISTS {name}_local ")]
        assert statement.endswith("SETTINGS replicated_deduplication_window = 10000")


def test_a_column_is_added_to_the_local_tables_and_then_to_the_distributed_one() -> None:
    altered = [m[1] for s in STATEMENTS if (m := ALTER.match(s))]
    assert altered == ["player_events_local", "player_events"]
    local, distributed = (s for s in STATEMENTS if ALTER.match(s))
    assert local.replace("player_events_local", "player_events") == distributed


def test_the_script_lists_every_migration_in_order() -> None:
    headers = re.findall(r"^-- (\d{4})_(\w+)$", cluster_script(CLUSTER), re.MULTILINE)
    assert headers == [(f"{m.version:04d}", m.name) for m in load_migrations()]


@pytest.mark.parametrize(("statement", "reason"), [
    ("ALTER TABLE player_events ADD COLUMN x UInt8", "no cluster translation"),
    ("CREATE TABLE IF NOT EXISTS new_table\n(\n    a UInt8\n)\nENGINE = MergeTree\nORDER BY a",
     "sharding key"),
    ("TRUNCATE TABLE schema_migrations", "not a sharded table"),
    ("INSERT INTO new_table SETTINGS insert_deduplicate = 0\nSELECT 1", "not a sharded table"),
])
def test_what_it_cannot_translate_is_refused(statement: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        translate(statement, CLUSTER)


def test_a_cluster_name_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(ClusterNameError, match="cluster name"):
        cluster_statements("c` SYNC; DROP")


class RecordingStorage:
    exclusive = False  # a cluster

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.versions: list[int] = []
        self.health = WriteHealth(lambda: None)

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        assert sql == f"SELECT version FROM {BOOKKEEPING}"
        return [(v,) for v in self.versions]

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        raise AssertionError("migrations read rows")

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        self.commands.append(sql)

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        assert table == BOOKKEEPING
        self.versions.extend(v for v in columns["version"] if isinstance(v, int))
        return 1

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        raise AssertionError("migrations insert no events")

    def close(self) -> None: ...


def test_migrating_the_cluster_applies_each_migration_once() -> None:
    storage = RecordingStorage()
    applied = migrate_cluster(storage, CLUSTER)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    first = cluster_statements(CLUSTER)[0][1]
    assert storage.commands == first + STATEMENTS
    storage.commands.clear()
    assert migrate_cluster(storage, CLUSTER) == []
    assert storage.commands == first


# Runs in its own process: this test process may already hold the session's chDB path.
_PARSE = r"""
import json, sys
import chdb
conn = chdb.connect(":memory:")
def escaped(text):  # a parameter value is read in the escaped (TSV) text form
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
formatted = [json.loads(conn.query("SELECT formatQuery({q:String})", "JSONCompact",
                                   params={"q": escaped(s)}).bytes())["data"][0][0]
             for s in json.load(sys.stdin)]
known = json.loads(conn.query("SELECT name FROM system.merge_tree_settings", "JSONCompact").bytes())
engines = json.loads(conn.query("SELECT name FROM system.table_engines", "JSONCompact").bytes())
query = json.loads(conn.query("SELECT name FROM system.settings", "JSONCompact").bytes())
print(json.dumps({"formatted": formatted, "settings": [r[0] for r in known["data"]],
                  "engines": [r[0] for r in engines["data"]],
                  "query_settings": [r[0] for r in query["data"]]}))
"""


@pytest.mark.chdb
def test_the_generated_sql_parses_and_names_real_engines_and_settings() -> None:
    out = subprocess.run([sys.executable, "-c", _PARSE], input=json.dumps(STATEMENTS),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    parsed = json.loads(out.stdout)
    assert len(parsed["formatted"]) == len(STATEMENTS)
    for statement in parsed["formatted"]:
        assert f"ON CLUSTER {CLUSTER}" in statement or statement.startswith("INSERT"), statement
    engines = {m[3] for s in STATEMENTS if (m := TABLE.match(s))}
    assert engines <= set(parsed["engines"])
    tables = "\n".join(s for s in STATEMENTS if TABLE.match(s))
    used = set(re.findall(r"SETTINGS (\w+) =", tables))
    assert used and used <= set(parsed["settings"])
    backfills = {name for s in STATEMENTS if (m := BACKFILL.match(s))
                 for name in re.findall(r"(\w+) =", m[2])}
    assert backfills and backfills <= set(parsed["query_settings"])
