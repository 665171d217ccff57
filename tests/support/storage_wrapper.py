"""A test database behind a wrapper: a test subclasses it and overrides the calls it watches
(an insert it counts, holds or fails); every other call goes to the database as it is."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy.typing as npt

from viewstats.core.storage import Params, QuerySettings, Row, Storage


class StorageWrapper:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.health, self.exclusive = storage.health, storage.exclusive

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        return self._storage.insert(table, columns, settings, millis=millis)

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        return self._storage.insert_json(table, lines, settings)

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        return self._storage.query(sql, params, settings)

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        return self._storage.query_columns(sql, params, settings)

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        self._storage.command(sql, settings)

    def close(self) -> None:
        self._storage.close()
