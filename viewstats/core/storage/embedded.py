"""chDB backend: the ClickHouse engine in this process, data under `<data-dir>/clickhouse`.

One chDB connection runs one statement at a time, so a small pool of connections to the same
path lets the query API and the writer work in parallel. chDB releases the GIL while a query runs.

Reads never hold up writes: at most pool_size - 1 reads hold a connection at once (the others
wait for a read slot, not for a connection), so a beacon's insert always finds one free, however
many slow reads the API is running. Writes may use every connection (the consumer's stores and
the write probe run side by side). With a pool of one, reads and writes share it. Reads' engine
threads also run niced, so that on a small machine they leave the CPU to inserts first.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import chdb
import numpy.typing as npt
import orjson

from viewstats.core.storage import (
    JSON_LINES_SETTINGS,
    Params,
    QuerySettings,
    Row,
    StorageError,
    StorageUnavailable,
    probe_write,
    verify_written,
)
from viewstats.core.storage.block_files import block_file, prepare
from viewstats.core.storage.columns import ARROW_SETTINGS, arrow_file_columns
from viewstats.core.storage.write_health import WriteHealth

log = logging.getLogger(__name__)

# chDB defaults async_insert to 1, which would acknowledge before the data is written and
# bypass block deduplication; 64-bit integers must come back as JSON numbers, not strings.
_SESSION_SETTINGS = {"async_insert": 0, "output_format_json_quote_64bit_integers": 0}
# Reads yield the CPU to writes: their engine threads run niced, so that a beacon's insert is
# not slowed by the reads beside it. The engine applies it only with CAP_SYS_NICE.
_READ_SETTINGS = {"os_thread_priority": 10}
# A column the table lacks is a writer's bug, never data to drop silently.
_INSERT_SETTINGS = {"input_format_skip_unknown_fields": 0}
# file() reads a block file as the table's own columns and types, as FORMAT would.
_FILE_SETTINGS = {"use_structure_from_insertion_table_in_table_functions": 1}
# How long `close` waits for a running query (a time-limited API query, or a bucket load).
CLOSE_WAIT_S = 60.0
# The engine reads a bound value in its escaped text form (as clickhouse-connect sends it):
# unescaped, a backslash, tab or newline in a value would fail the query or change the value.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})


def _settings_clause(settings: QuerySettings | None) -> str:
    if not settings:
        return ""
    parts = []
    for key, value in settings.items():
        if not key.replace("_", "").isalnum():
            raise StorageError(f"invalid setting name {key!r}")
        rendered = str(value) if isinstance(value, int) else "'" + value.replace(
            "\\", "\\\\").replace("'", "\\'") + "'"
        parts.append(f"{key} = {rendered}")
    return " SETTINGS " + ", ".join(parts)


def _drain(conn: Any) -> None:
    """Take what a failed query left on `conn`. chDB keeps the output of a query the engine
    stopped while running (a limit hit: TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED) and returns it
    before the next query's own, which then does not parse; a throwaway query takes it."""
    try:
        conn.query("SELECT 1")
    except Exception:  # the connection's next query will say what is wrong with it
        return


class EmbeddedStorage:
    exclusive = True  # one process owns a chDB path, so every write goes through this object

    def __init__(self, path: Path, pool_size: int) -> None:
        self.path = path
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._read_slots = threading.BoundedSemaphore(max(1, pool_size - 1))
        self._opened = 0
        self._closed = False
        self.health = WriteHealth(lambda: probe_write(self))
        try:
            for _ in range(pool_size):
                conn = self._open(path)
                self._pool.put(conn)  # closed with the others if a SET fails
                self._opened += 1
                # Outside _open: a setting the engine refuses is this code's bug, not the path's.
                for key, value in _SESSION_SETTINGS.items():
                    conn.query(f"SET {key} = {value}")
            self._blocks = prepare(path)  # once the engine holds the path: see block_files.py
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _open(path: Path) -> Any:
        """A connection to the engine on `path`; StorageUnavailable when the path cannot be
        made or is locked by another process (chDB lets one process own a path)."""
        try:
            path.mkdir(parents=True, exist_ok=True)
            return chdb.connect(str(path))  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise StorageUnavailable(f"cannot open chDB at {path}: {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._closed:
            raise StorageError("the embedded database is closed")
        conn = self._pool.get()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        text = self._read(sql, params, {**_READ_SETTINGS, **(settings or {})}, "JSONCompact")
        if not text:
            return []
        return [tuple(row) for row in orjson.loads(text)["data"]]

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        return arrow_file_columns(self._read(
            sql, params, {**_READ_SETTINGS, **(settings or {}), **ARROW_SETTINGS}, "Arrow"))

    def _read(self, sql: str, params: Params | None, settings: QuerySettings,
              output: str) -> bytes:
        """The answer to a read, in the `output` format, taken in a read slot."""
        with self._read_slots, self._connection() as conn:
            try:
                raw = conn.query(sql + _settings_clause(settings), output,
                                 params={k: str(v).translate(_ESCAPES)
                                         for k, v in (params or {}).items()})
            except Exception as exc:
                _drain(conn)
                raise StorageError(str(exc)) from exc
        # bytes(), a copy, not the zero-copy memview: chDB frees its buffer with `raw`, and
        # arrays read from an Arrow answer point into the buffer they are read from.
        answer: bytes = raw.bytes()
        return answer

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        with self._connection() as conn:
            try:
                conn.query(sql + _settings_clause(settings))
            except Exception as exc:
                raise StorageError(str(exc)) from exc

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        # JSONColumns keeps the block columnar end to end; DateTime64 parses a decimal number
        # as seconds, and the shortest repr of ms/1000 is exactly the 3-decimal value.
        payload = {name: ([v / 1000 for v in values]  # type: ignore[operator]
                          if name in millis else values)
                   for name, values in columns.items()}
        rows = len(next(iter(columns.values()), ()))
        statement = (f"INSERT INTO {table} ({', '.join(columns)})"
                     f"{_settings_clause({**_INSERT_SETTINGS, **(settings or {})})}"
                     " FORMAT JSONColumns ").encode() + orjson.dumps(payload)
        return self._write(table, statement, rows)

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        # From a file of its own, not inline after FORMAT: the engine's inline path costs about
        # twice the CPU for the same block (architecture §5). The block's parts, its token's
        # deduplication and the rows it reports written are the same either way.
        clause = _settings_clause({**JSON_LINES_SETTINGS, **_FILE_SETTINGS, **(settings or {})})
        try:
            with block_file(self._blocks, lines) as path:
                source = str(path).replace("\\", "\\\\").replace("'", "\\'")
                return self._write(table, (f"INSERT INTO {table} SELECT * FROM "
                                           f"file('{source}', JSONEachRow){clause}").encode(),
                                   len(lines))
        except OSError as exc:  # the block file could not be written: the disk is full, say
            self.health.failed(exc)
            raise StorageError(f"{table}: cannot write the insert's block file: {exc}") from exc

    def _write(self, table: str, statement: bytes, rows: int) -> int:
        with self._connection() as conn:
            try:
                # One query, the data in the statement or a file it names: chDB's streaming
                # inserter (send_insert) reports success, even rows written, when the write
                # itself failed.
                result = conn.query(statement)
                # Counts the materialized views' rows too, and a deduplicated block's.
                verify_written(table, rows, result.rows_written())
            except Exception as exc:
                self.health.failed(exc)
                raise StorageError(str(exc)) from exc
        self.health.succeeded()
        return rows

    def close(self) -> None:
        """Close every connection once its query (a background load's, say) has returned: the
        engine shuts down with the process, and a thread still inside it then crashes it."""
        self.health.close()
        self._closed = True
        for _ in range(self._opened):
            try:
                self._pool.get(timeout=CLOSE_WAIT_S).close()
            except queue.Empty:
                log.warning("closing chDB with a query still running after %s s", CLOSE_WAIT_S)
                return
