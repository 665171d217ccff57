"""Storage: one small interface over the ClickHouse engine, in-process (chDB) or a server.

Both backends take the same SQL with server-side bound parameters (`{name:Type}`) so the query
layer never formats values into SQL text.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from viewstats.core.settings import Settings
from viewstats.core.storage.write_health import WriteHealth

if TYPE_CHECKING:  # numpy only where columns are read (viewstats.core.storage.columns)
    import numpy.typing as npt

Row = tuple[Any, ...]
Params = Mapping[str, str | int]
QuerySettings = Mapping[str, str | int]


class StorageError(RuntimeError):
    """The database rejected a statement or could not be reached."""


class StorageUnavailable(StorageError):
    """The database could not be opened or reached at all: its path, address or credentials,
    the environment's to fix. Any other StorageError may be a bug (a statement the engine
    refuses), so only this one is an operator's error (viewstats.cli)."""


PROBE_TABLE = "write_probe"


# How an engine reads JSON lines (`insert_json`): a field the table lacks is a writer's bug, never
# data to drop silently, and an integer for a DateTime64 column is its ticks (ms for
# DateTime64(3)), as ClickHouse read it up to 26.7 and reads it from 26.8 with this setting.
JSON_LINES_SETTINGS = {"input_format_skip_unknown_fields": 0,
                       "input_format_read_datetime_number_as_raw_value": 1}


class Storage(Protocol):
    health: WriteHealth  # every insert's outcome
    # True when no other process can write the database (the embedded engine: one process owns
    # a chDB path), so whatever this process's writers say they wrote is every write.
    exclusive: bool

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        """Run a SELECT and return its rows (UInt64 as int, dates as ISO text)."""

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        """Run a SELECT and return one numpy array per column, in its order, read from the
        engine's Arrow answer (no Python object per row but for strings): integers as int64 or
        uint64, strings (String, LowCardinality, FixedString) as object arrays of str, Enum as
        its number (select toString() for its name), the rest as columns.table_columns says.
        An empty answer still has its columns. As `query` otherwise: bound parameters,
        settings, errors, and on chDB a read slot."""

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        """Run a statement that returns nothing (DDL, INSERT ... SELECT)."""

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        """Insert one columnar block and return its row count.

        `millis` names the columns holding epoch milliseconds for a DateTime64(3) column;
        each backend encodes them in the form it parses exactly.
        """

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        """Insert `lines`, one JSON object each with a field per column, as one block, and
        return its row count. The engine parses them (JSONEachRow, JSON_LINES_SETTINGS): no
        Python object per row.
        """

    def close(self) -> None: ...


def verify_written(table: str, expected: int, reported: int) -> None:
    """Raise unless the engine reports at least the block's rows as written.

    What it reports includes the materialized views' rows (and, on the embedded engine, a
    block dropped as a duplicate), so fewer than the block's own rows means rows went missing.
    """
    if reported < expected:
        raise StorageError(f"{table}: the engine reports {reported} of {expected} rows written")


def probe_write(storage: Storage) -> None:
    """A one-row insert that shows whether the database takes writes (see WriteHealth)."""
    storage.insert(PROBE_TABLE, {"at": [time.time_ns() // 1_000_000]},
                   {"insert_deduplicate": 0}, millis=("at",))


def open_storage(settings: Settings) -> Storage:
    """The server named by CLICKHOUSE_URL, else the embedded engine under the data dir."""
    if settings.clickhouse_url:
        from viewstats.core.storage.clickhouse_server import ServerStorage
        return ServerStorage(settings.clickhouse_url)
    from viewstats.core.storage.embedded import EmbeddedStorage
    return EmbeddedStorage(settings.chdb_path, settings.chdb_pool_size)
