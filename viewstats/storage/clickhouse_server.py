"""Server backend: a ClickHouse server or cluster over HTTP through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import clickhouse_connect

from viewstats.storage import Params, QuerySettings, Row, StorageError


class ServerStorage:
    def __init__(self, url: str) -> None:
        try:
            # No session id: without one the client is safe to share between threads.
            self._client: Any = clickhouse_connect.get_client(
                dsn=url, autogenerate_session_id=False,
                settings={"async_insert": 0})
        except Exception as exc:
            raise StorageError(f"cannot connect to ClickHouse at {url}: {exc}") from exc

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        try:
            result = self._client.query(sql, parameters=dict(params or {}),
                                        settings=dict(settings or {}))
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return [tuple(row) for row in result.result_rows]

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        try:
            self._client.command(sql, settings=dict(settings or {}))
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        # clickhouse-connect writes integers into DateTime64 as raw ticks: ms for precision 3.
        del millis
        names = list(columns)
        try:
            summary = self._client.insert(table, [columns[n] for n in names], column_names=names,
                                          column_oriented=True, settings=dict(settings or {}))
        except Exception as exc:
            raise StorageError(str(exc)) from exc
        return int(summary.written_rows)

    def close(self) -> None:
        self._client.close()
