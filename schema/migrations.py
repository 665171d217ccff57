"""Ordered SQL migrations (`NNNN_name.sql` beside this module), applied once each.

Every statement is written with IF NOT EXISTS, so a migration interrupted half way is simply
run again; `schema_migrations` records the versions that completed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from viewstats.core.storage import Storage
from viewstats.core.write_announcements import announcing_rewrite

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def statements(self) -> list[str]:
        """The file's statements; statements end with `;` at the end of a line."""
        body = "\n".join(line for line in self.sql.splitlines()
                         if not line.lstrip().startswith("--"))
        return [part.strip() for part in re.split(r";\s*$", body, flags=re.MULTILINE)
                if part.strip()]


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__package__).iterdir():
        if match := _FILE_NAME.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must run 1..N without gaps, found {versions}")
    return found


def applied_versions(storage: Storage) -> set[int]:
    return {int(row[0]) for row in storage.query("SELECT version FROM schema_migrations")}


# Told of each pending migration before it runs, and after with its seconds: a backfill over a
# large `player_events` runs for minutes, and an operator should see which one is running.
Progress = Callable[[Migration, float | None], None]


def migrate(storage: Storage, progress: Progress | None = None) -> list[Migration]:
    """Apply pending migrations in order; return those applied (empty when up to date)."""
    return apply_plan(storage, [(m, m.statements) for m in load_migrations()], progress)


def apply_plan(storage: Storage, plan: list[tuple[Migration, list[str]]],
               progress: Progress | None = None) -> list[Migration]:
    """Run each pending migration's statements (the plain ones, or their cluster variant)."""
    # The first migration creates the bookkeeping table itself and is safe to repeat.
    for statement in plan[0][1]:
        storage.command(statement)
    done = applied_versions(storage)
    applied = []
    for migration, statements in plan:
        if migration.version in done:
            continue
        started = time.monotonic()
        if progress is not None:
            progress(migration, None)
        with announcing_rewrite(storage):  # a backfill or truncation may change any rollup
            for statement in statements:
                storage.command(statement)
        storage.insert("schema_migrations", {"version": [migration.version],
                                             "name": [migration.name]})
        applied.append(migration)
        if progress is not None:
            progress(migration, time.monotonic() - started)
    return applied
