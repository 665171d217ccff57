"""Server backend: a ClickHouse server or cluster over HTTP through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import clickhouse_connect
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
from viewstats.core.storage.write_health import WriteHealth

if TYPE_CHECKING:
    import numpy.typing as npt

# Rows as the Storage protocol gives them on every backend (chDB's JSON): text, not bytes or
# uuid.UUID, for these types; dates are converted in `_plain`, as no text format exists for them.
_TEXT_FORMATS = {"FixedString": "string", "UUID": "string"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


class ServerStorage:
    exclusive = False  # other processes write to a server too

    def __init__(self, url: str) -> None:
        self.health = WriteHealth(lambda: probe_write(self))
        try:
            # No session id: without one the client is safe to share between threads.
            # Inserts return once stored, also through a cluster's Distributed tables (see
            # schema/cluster.py): a background send would acknowledge before the data is written
            # and would split a batch's dedup token off from the block it protects.
            self._client: Any = clickhouse_connect.get_client(
                dsn=url, autogenerate_session_id=False,
                settings={"async_insert": 0, "distributed_foreground_insert": 1})
        except Exception as exc:
            raise StorageUnavailable(f"cannot connect to ClickHouse at {url}: {exc}") from exc
        self._known_json_settings: dict[str, int] | None = None

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        try:
            result = self._client.query(sql, parameters=dict(params or {}),
                                        settings=dict(settings or {}),
                                        query_formats=_TEXT_FORMATS)
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return [tuple(_plain(value) for value in row) for row in result.result_rows]

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        from viewstats.core.storage import columns  # numpy and pyarrow: only for reads

        try:
            table = self._client.query_arrow(sql, parameters=dict(params or {}), settings={
                **(settings or {}), **columns.ARROW_SETTINGS}, use_strings=True)
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return columns.table_columns(table)

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        try:
            self._client.command(sql, settings=dict(settings or {}))
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        # As JSON rows, like insert_json: clickhouse-connect's typed insert would load numpy,
        # pandas and pyarrow (~100 MB of RSS) into every writer. Integers are DateTime64 ticks.
        del millis
        names = list(columns)
        rows = list(zip(*(columns[name] for name in names), strict=True))
        data = orjson.dumps([dict(zip(names, row, strict=True)) for row in rows])
        return self._insert(table, data, len(rows), settings)

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        return self._insert(table, b"\n".join(lines), len(lines), settings)

    def _insert(self, table: str, data: bytes, rows: int,
                settings: QuerySettings | None) -> int:
        """`data` is JSONEachRow (objects one per line, or a JSON array of them)."""
        try:
            summary = self._raw_insert(table, data, settings)
            # A server reports 0 for a block it dropped as a duplicate of a tokened insert.
            if "written_rows" in summary.summary \
                    and "insert_deduplication_token" not in (settings or {}):
                verify_written(table, rows, summary.written_rows)
        except Exception as exc:
            self.health.failed(exc)
            raise StorageError(str(exc)) from exc
        self.health.succeeded()
        return rows

    def _raw_insert(self, table: str, data: bytes, settings: QuerySettings | None) -> Any:
        return self._client.raw_insert(table, insert_block=data, fmt="JSONEachRow", settings={
            **self._json_lines_settings(), **(settings or {})})

    def _json_lines_settings(self) -> dict[str, int]:
        """JSON_LINES_SETTINGS, but those this server does not know: a server before 26.8
        lacks the DateTime64 one, and reads integers as ticks without it."""
        if self._known_json_settings is None:
            known = self._client.query(
                "SELECT name FROM system.settings WHERE has({names:Array(String)}, name)",
                parameters={"names": list(JSON_LINES_SETTINGS)}).result_rows
            self._known_json_settings = {name: JSON_LINES_SETTINGS[name] for name, in known}
        return self._known_json_settings

    def close(self) -> None:
        self.health.close()
        self._client.close()
