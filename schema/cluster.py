"""The cluster variant of the schema (architecture §4), generated from the same migration files.

Each `CREATE TABLE t` becomes a replicated `t_local` on every node plus a Distributed `t` under
the original name, so readers and writers keep using the names they use on one server; each
`CREATE MATERIALIZED VIEW` is attached to the local tables. Every statement runs `ON CLUSTER`.

Why the rollups shard by the same key as `player_events`: an insert through the Distributed
`player_events` lands in one shard's `player_events_local`, and the materialized views fire there,
on that node, writing into that shard's rollup tables. A client's raw rows and rollup rows
therefore live on the same shard only if every Distributed table routes by the same
`cityHash64(client_id)`; then a query for one client (`optimize_skip_unused_shards=1`) or a
direct rollup insert goes to the shard the views wrote to.

Deduplication: replicated tables deduplicate inserts by default (insert_deduplicate=1), so the
single-node `non_replicated_deduplication_window` becomes `replicated_deduplication_window` with
the same size, explicit so the window does not depend on the server's default. A batch's token
reaches every shard's part of the block only when the Distributed insert is synchronous, which
is why ServerStorage inserts with `distributed_foreground_insert = 1` (a background send would
also acknowledge before the data is stored).

`schema_migrations` is not sharded: one replicated table whose Keeper path has no `{shard}`,
so every node of every shard holds the same list and `viewstats migrate` reads it from any node.
"""

from __future__ import annotations

import re

from viewstats.core.rollups import rollup_tables
from viewstats.core.storage import Storage
from viewstats.schema.migrations import Migration, Progress, apply_plan, load_migrations

BOOKKEEPING = "schema_migrations"
SHARDING_KEYS = {
    "player_events": "cityHash64(client_id)",
    # Every rollup the registry names, by the raw table's key (see above); a new one is sharded
    # with no edit here.
    **{table: "cityHash64(client_id)" for table in rollup_tables()},
    "consumer_batches": "cityHash64(topic, partition)",  # read by exact (topic, partition)
    "write_probe": "rand()",  # never read
    "write_records": "rand()",  # read whole, by time
}
LOCAL_SUFFIX = "_local"

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)(\s.*?)ENGINE = (\w*MergeTree)"
                           r"(?:\(([^)]*)\))?(.*)$", re.DOTALL)
_CREATE_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\s+(.*)$",
                          re.DOTALL)
_TABLE_REFERENCE = re.compile(r"\b(FROM|JOIN)\s+(\w+)\b")
_TRUNCATE = re.compile(r"^TRUNCATE TABLE (\w+)$")
_ALTER = re.compile(r"^ALTER TABLE (\w+)(\s+ADD COLUMN IF NOT EXISTS\s.*)$", re.DOTALL)
_BACKFILL = re.compile(r"^INSERT INTO (\w+) SETTINGS ([^\n]+)\n(SELECT\s.*)$", re.DOTALL)


class ClusterNameError(ValueError):
    """A cluster name that could not be quoted into `ON CLUSTER` safely: the caller's input."""


def _replicated(engine: str, args: str | None, path: str, replica: str) -> str:
    own = f"'{path}', '{replica}'"
    return f"Replicated{engine}({own}{', ' + args if args else ''})"


def _dedup_settings(rest: str) -> str:
    return rest.replace("non_replicated_deduplication_window", "replicated_deduplication_window")


def _table(cluster: str, match: re.Match[str]) -> list[str]:
    name, columns, engine, args, rest = match.groups()
    on = f"ON CLUSTER `{cluster}`"
    if name == BOOKKEEPING:
        path = f"/clickhouse/tables/all/{{database}}/{name}"
        return [f"CREATE TABLE IF NOT EXISTS {name} {on}{columns}ENGINE = "
                f"{_replicated(engine, args, path, '{shard}-{replica}')}{_dedup_settings(rest)}"]
    if name not in SHARDING_KEYS:
        raise ValueError(f"table {name}: name its sharding key in schema/cluster.py SHARDING_KEYS")
    local = name + LOCAL_SUFFIX
    path = f"/clickhouse/tables/{{shard}}/{{database}}/{local}"
    return [f"CREATE TABLE IF NOT EXISTS {local} {on}{columns}ENGINE = "
            f"{_replicated(engine, args, path, '{replica}')}{_dedup_settings(rest)}",
            f"CREATE TABLE IF NOT EXISTS {name} {on} AS {local}\nENGINE = Distributed('{cluster}', "
            f"currentDatabase(), {local}, {SHARDING_KEYS[name]})"]


def _view(cluster: str, match: re.Match[str]) -> list[str]:
    name, target, select = match.groups()

    def local(ref: re.Match[str]) -> str:
        keyword, table = ref.groups()
        return f"{keyword} {table + LOCAL_SUFFIX if table in SHARDING_KEYS else table}"

    if target not in SHARDING_KEYS:
        raise ValueError(f"view {name}: its target {target} is not a sharded table")
    return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} ON CLUSTER `{cluster}` "
            f"TO {target + LOCAL_SUFFIX} AS\n{_TABLE_REFERENCE.sub(local, select)}"]


def _truncate(cluster: str, match: re.Match[str]) -> list[str]:
    (name,) = match.groups()
    if name not in SHARDING_KEYS:
        raise ValueError(f"truncate {name}: not a sharded table")
    return [f"TRUNCATE TABLE {name + LOCAL_SUFFIX} ON CLUSTER `{cluster}`"]


def _alter(cluster: str, match: re.Match[str]) -> list[str]:
    """A column added to a sharded table: to the local tables, then to the Distributed one,
    which reads the columns it names (an insert through it with the new column would otherwise
    fail); both rerun safely (IF NOT EXISTS)."""
    name, change = match.groups()
    if name not in SHARDING_KEYS:
        raise ValueError(f"alter {name}: not a sharded table")
    return [f"ALTER TABLE {name + LOCAL_SUFFIX} ON CLUSTER `{cluster}`{change}",
            f"ALTER TABLE {name} ON CLUSTER `{cluster}`{change}"]


def _backfill(match: re.Match[str]) -> list[str]:
    """A rollup's backfill (`INSERT INTO t SETTINGS ... SELECT`), run once through one node:
    Distributed to Distributed, so each row goes to the shard its client's events are on; a
    synchronous send, so the migration is recorded only after the rows are stored."""
    target, settings, select = match.groups()
    if target not in SHARDING_KEYS:
        raise ValueError(f"insert into {target}: not a sharded table")
    return [f"INSERT INTO {target} SETTINGS {settings}, distributed_foreground_insert = 1\n"
            f"{select}"]


def translate(statement: str, cluster: str) -> list[str]:
    """The cluster statements for one single-server statement."""
    if match := _CREATE_TABLE.match(statement):
        return _table(cluster, match)
    if match := _CREATE_VIEW.match(statement):
        return _view(cluster, match)
    if match := _TRUNCATE.match(statement):
        return _truncate(cluster, match)
    if match := _BACKFILL.match(statement):
        return _backfill(match)
    if match := _ALTER.match(statement):
        return _alter(cluster, match)
    # Anything else (another ALTER, a plain VIEW, a dictionary...) needs its own rule here
    # rather than a guess: applying a half-translated schema to a cluster is hard to take back.
    raise ValueError(f"no cluster translation for: {statement.splitlines()[0]}")


def cluster_statements(cluster: str) -> list[tuple[Migration, list[str]]]:
    """Every migration with its statements for the cluster named in the server's config."""
    if not _CLUSTER_NAME.match(cluster):
        raise ClusterNameError(f"cluster name {cluster!r}: letters, digits, '_', '-' and '.' only")
    return [(m, [out for statement in m.statements for out in translate(statement, cluster)])
            for m in load_migrations()]


def cluster_script(cluster: str) -> str:
    """The cluster DDL as one SQL script, for `viewstats migrate --cluster NAME --print`."""
    parts = []
    for migration, statements in cluster_statements(cluster):
        parts.append(f"-- {migration.version:04d}_{migration.name}")
        parts.extend(statement + ";\n" for statement in statements)
    return "\n".join(parts)


def migrate_cluster(storage: Storage, cluster: str,
                    progress: Progress | None = None) -> list[Migration]:
    """Apply the pending migrations to the cluster, through any one node; as `migrate`."""
    return apply_plan(storage, cluster_statements(cluster), progress)
