from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.support.api import COUNTRIES
from tests.support.processes import serving, viewstats
from viewstats.core.rollups import rollup_tables
from viewstats.core.storage import Storage
from viewstats.schema.migrations import Migration, apply_plan, load_migrations

ROLLUPS = rollup_tables()
TABLES = {"schema_migrations", "player_events", "consumer_batches", "write_probe",
          "write_records", *ROLLUPS, *(f"{rollup}_mv" for rollup in ROLLUPS)}

# Runs in its own process: this test process already holds the session's chDB path.
_INSPECT = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.core.events import PlayerEvent, insert_events
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
if sys.argv[2] == "insert":
    insert_events(storage, [PlayerEvent(17, 1714564800000, "watch", "vod", "v",
        "00000000-0000-4000-8000-000000000001", "AU", "h")])
tables = [r[0] for r in storage.query(
    "SELECT name FROM system.tables WHERE database = currentDatabase()")]
settings = storage.query("SELECT name, engine_full FROM system.tables "
                         "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'")
print(json.dumps({"tables": tables, "engines": dict(settings)}))
storage.close()
"""


def _inspect(data_dir: Path, action: str = "read") -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _INSPECT, str(data_dir / "clickhouse"), action],
                         capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "schema_migrations"


def test_statements_split_at_line_end_semicolons_and_drop_comments() -> None:
    migration = Migration(9, "x", "-- a; comment\nCREATE TABLE a (s String DEFAULT ';')\n"
                          "ENGINE = Memory;\n\nCREATE VIEW b AS SELECT 1;\n")
    assert migration.statements == [
        "CREATE TABLE a (s String DEFAULT ';')\nENGINE = Memory", "CREATE VIEW b AS SELECT 1"]


@pytest.mark.chdb
def test_migrate_applies_to_an_empty_data_dir_and_twice_is_a_no_op(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    first = viewstats("migrate", "--data-dir", str(data))
    # Each one named as it starts (a backfill may run for minutes) and as it ends, in order.
    lines = first.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == [
        f"{m.version:04d}_{m.name}" for m in load_migrations() for _ in range(2)]
    assert all(line.startswith(("applying ", "applied ")) for line in lines[:-1])
    assert viewstats("migrate", "--data-dir", str(data)).stdout.strip() == "schema is up to date"
    state = _inspect(data)
    assert isinstance(state["tables"], list)
    assert set(state["tables"]) == TABLES
    engines = state["engines"]
    assert isinstance(engines, dict)
    for table in ("player_events", *ROLLUPS):
        # Without it insert deduplication is off on a plain MergeTree (architecture §4).
        assert "non_replicated_deduplication_window = 10000" in engines[table]


# Events stored before the rollups of 0008-0010 and the audience columns existed (only the columns
# of 0002), then those migrations, then two of them run again as after an interruption: every
# rollup must count each stored event once, the audience ones under unknown dimensions.
_BACKFILL = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.core.events import PlayerEvent, to_columns
from viewstats.schema.migrations import apply_plan, load_migrations, migrate
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
migrations = load_migrations()
apply_plan(storage, [(m, m.statements) for m in migrations if m.version < 8])
events = json.loads(sys.argv[2])
columns = to_columns([PlayerEvent(*e) for e in events])
storage.insert("player_events", {name: columns[name] for name in list(columns)[:8]},
               millis=("ts",))
migrate(storage)
for version in (8, 12):
    for statement in next(m for m in migrations if m.version == version).statements:
        storage.command(statement)
counts = {}
for table, measure, key in (("views_by_video_hourly", "views", "video_id"),
                            ("views_by_video_daily", "views", "video_id"),
                            ("views_by_host_hourly", "views", "host"),
                            ("views_by_host_daily", "views", "host"),
                            ("events_by_country_hourly", "events", "concat(event, country)"),
                            ("events_by_country_daily", "events", "concat(event, country)"),
                            ("views_by_device_hourly", "views", "concat(browser, os, platform)"),
                            ("views_by_device_daily", "views", "concat(browser, os, platform)"),
                            ("views_by_region_hourly", "views", "concat(country, region)"),
                            ("views_by_region_daily", "views", "concat(country, region)"),
                            ("views_by_embed_hourly", "views", "embed_url"),
                            ("views_by_embed_daily", "views", "embed_url")):
    counts[table] = dict(storage.query(f"SELECT {key}, sum({measure}) FROM {table} GROUP BY 1"))
print(json.dumps(counts))
storage.close()
"""


@pytest.mark.chdb
def test_new_rollups_count_the_events_stored_before_them_once(tmp_path: Path) -> None:
    events = [(17, 1_714_564_800_000 + i * 1_800_000, ["watch", "init", "watch"][i % 3], "vod",
               f"v-{i % 2}", f"00000000-0000-4000-8000-{i:012x}", "AU", f"h{i % 3}")
              for i in range(12)]
    out = subprocess.run([sys.executable, "-c", _BACKFILL, str(tmp_path / "clickhouse"),
                          json.dumps(events)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    watched = [e for e in events if e[2] == "watch"]
    by_video = {v: sum(1 for e in watched if e[4] == v) for v in ("v-0", "v-1")}
    by_host = {h: sum(1 for e in watched if e[7] == h) for h in ("h0", "h1", "h2")}
    by_event = {"watchAU": len(watched), "initAU": len(events) - len(watched)}
    for grain in ("hourly", "daily"):
        assert counts[f"views_by_video_{grain}"] == by_video
        assert counts[f"views_by_host_{grain}"] == {h: n for h, n in by_host.items() if n}
        assert counts[f"events_by_country_{grain}"] == by_event
        assert counts[f"views_by_device_{grain}"] == {"unknownunknownunknown": len(watched)}
        assert counts[f"views_by_region_{grain}"] == {"AU": len(watched)}
        assert counts[f"views_by_embed_{grain}"] == {"": len(watched)}


@pytest.mark.chdb
@pytest.mark.slow
def test_data_survives_a_restart_of_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    viewstats("migrate", "--data-dir", str(data))
    _inspect(data, "insert")
    token = viewstats("keys", "create", "--client-id", "17", "--data-dir",
                      str(data)).stdout.strip().splitlines()[-1]
    params = {"date_from": "2024-05-01", "date_to": "2024-05-01"}
    for _ in range(2):
        with serving("run", data) as (base, _proc):
            response = httpx.get(base + COUNTRIES, params=params,
                                 headers={"Authorization": f"apikey {token}"})
            assert response.json() == {"data": [
                {"views": 1, "country": "AU", "country_name": "Australia"}]}


class _RecordingStorage:
    """Records what apply_plan does, in order; `done` are the versions already applied."""

    exclusive = False  # nothing here listens for rewrites

    def __init__(self, done: set[int], log: list[tuple[str, object]]) -> None:
        self.done, self.log = done, log

    def command(self, sql: str) -> None:
        self.log.append(("command", sql))

    def query(self, sql: str) -> list[tuple[int]]:
        return [(version,) for version in sorted(self.done)]

    def insert(self, table: str, columns: dict[str, list[object]]) -> None:
        self.log.append(("recorded", columns["version"][0]))


def test_progress_is_told_before_and_after_each_pending_migration_only() -> None:
    log: list[tuple[str, object]] = []
    plan = [(Migration(v, f"m{v}", ""), [f"statement {v}"]) for v in (1, 2, 3)]

    def progress(migration: Migration, seconds: float | None) -> None:
        assert seconds is None or seconds >= 0
        log.append(("applying" if seconds is None else "applied", migration.version))

    storage = cast(Storage, _RecordingStorage({1, 2}, log))
    assert [m.version for m in apply_plan(storage, plan, progress)] == [3]
    assert log == [("command", "statement 1"),  # the bookkeeping migration, always run
                   ("applying", 3), ("command", "statement 3"), ("recorded", 3),
                   ("applied", 3)]
