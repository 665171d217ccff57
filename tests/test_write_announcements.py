"""Writers say what they wrote to player_events (viewstats/core/write_announcements.py,
architecture §13): to this process's listeners on a database only it writes, once the insert
returned; in write_records on a shared one, after the insert and only if it succeeded."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy.typing as npt
import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from viewstats.core.events import PlayerEvent, insert_events, insert_json_rows
from viewstats.core.storage import Params, QuerySettings, Row, Storage, StorageError
from viewstats.core.storage.write_health import WriteHealth
from viewstats.core.write_announcements import announcing_rewrite, listen
from viewstats.ingest import wire
from viewstats.ingest.collector.embedded_sink import EmbeddedSink

NOON = 1_714_564_800_000
News = tuple[object, ...]


class Heard:
    """A listener that logs what it is told, and what `look` sees at that moment."""

    def __init__(self, log: list[News], look: Callable[[], object] = lambda: None) -> None:
        self.log, self._look = log, look
        listen(self)

    def inserted(self, client_ids: Collection[int], first_ms: int, last_ms: int) -> None:
        self.log.append(("inserted", frozenset(client_ids), first_ms, last_ms, self._look()))

    def rewritten(self) -> None:
        self.log.append(("rewritten",))


class LoggingStorage:
    """Logs each insert (table and columns) in order; refuses `player_events` while `failing`."""

    def __init__(self, log: list[News], *, exclusive: bool) -> None:
        self.log, self.exclusive, self.failing = log, exclusive, False
        self.health = WriteHealth(lambda: None)

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        if table == "player_events" and self.failing:
            raise StorageError("Read-only file system")
        self.log.append(("insert", table, {k: list(v) for k, v in columns.items()},
                         dict(settings or {}), frozenset(millis)))
        return len(next(iter(columns.values())))

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        if self.failing:
            raise StorageError("Read-only file system")
        self.log.append(("insert_json", table, len(lines)))
        return len(lines)

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        raise AssertionError("writers do not read")

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        raise AssertionError("writers do not read")

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        self.log.append(("command", sql))

    def close(self) -> None: ...


def _events(client: int, other: int) -> list[PlayerEvent]:
    return [watch(client, NOON + 5, "AU", 1), watch(other, NOON, "US", 2),
            watch(client, NOON + 9, "AU", 3, event="start")]


def test_a_shared_database_gets_a_record_after_each_insert_and_listeners_hear_nothing() -> None:
    log: list[News] = []
    storage = LoggingStorage(log, exclusive=False)
    heard = Heard([])
    insert_events(storage, _events(7, 3))
    rows = wire.Rows.of([watch(9, NOON + 1, "AU", 4), watch(9, NOON + 2, "AU", 5)])
    insert_json_rows(storage, rows.lines, rows.client_ids, (NOON + 1, NOON + 2))
    assert [entry[:2] for entry in log] == [("insert", "player_events"),
                                            ("insert", "write_records"),
                                            ("insert_json", "player_events"),
                                            ("insert", "write_records")]
    millis = frozenset({"ts_from", "ts_to"})
    assert [entry[2:] for entry in log if entry[1] == "write_records"] == [
        ({"client_ids": [[3, 7]], "ts_from": [NOON], "ts_to": [NOON + 9]},
         {"insert_deduplicate": 0}, millis),
        ({"client_ids": [[9]], "ts_from": [NOON + 1], "ts_to": [NOON + 2]},
         {"insert_deduplicate": 0}, millis)]
    assert heard.log == []


def test_a_failed_insert_into_a_shared_database_records_nothing() -> None:
    log: list[News] = []
    storage = LoggingStorage(log, exclusive=False)
    storage.failing = True
    heard = Heard([])
    with pytest.raises(StorageError):
        insert_events(storage, _events(7, 3))
    rows = wire.Rows.of([watch(9, NOON, "AU", 4)])
    with pytest.raises(StorageError):
        insert_json_rows(storage, rows.lines, rows.client_ids, (NOON, NOON))
    assert log == [] and heard.log == []


def test_listeners_hear_each_insert_into_an_exclusive_database_once_it_returned() -> None:
    writes: list[News] = []
    storage = LoggingStorage(writes, exclusive=True)
    first = Heard([], look=lambda: len(writes))  # how many inserts were made when it was told
    second = Heard([], look=lambda: len(writes))
    insert_events(storage, _events(7, 3))
    assert first.log == second.log == [("inserted", frozenset({3, 7}), NOON, NOON + 9, 1)]
    assert [entry[1] for entry in writes] == ["player_events"]  # no write_records


def test_a_failed_insert_into_an_exclusive_database_is_heard_as_what_it_tried() -> None:
    """Part of it may have landed (a materialized view failing after the table took the rows),
    so its listeners drop what it might have touched, and only that."""
    storage = LoggingStorage([], exclusive=True)
    storage.failing = True
    heard = Heard([])
    rows = wire.Rows.of([watch(9, NOON + 1, "AU", 4), watch(9, NOON + 2, "AU", 5)])
    with pytest.raises(StorageError):
        insert_json_rows(storage, rows.lines, rows.client_ids, (NOON + 1, NOON + 2))
    assert heard.log == [("inserted", frozenset({9}), NOON + 1, NOON + 2, None)]


def test_an_empty_block_is_not_announced() -> None:
    log: list[News] = []
    heard = Heard(log)
    for exclusive in (True, False):
        insert_events(LoggingStorage(log, exclusive=exclusive), [])
    assert [entry[:2] for entry in heard.log] == [("insert", "player_events")] * 2  # no news


def test_a_rewrite_is_heard_as_anything_also_when_it_fails() -> None:
    log: list[News] = []
    heard = Heard(log)
    storage = LoggingStorage(log, exclusive=True)
    with announcing_rewrite(storage):
        storage.command("TRUNCATE TABLE player_events")
    with pytest.raises(StorageError), announcing_rewrite(storage):
        raise StorageError("half done")
    with announcing_rewrite(LoggingStorage(log, exclusive=False)):
        pass
    assert heard.log == [("command", "TRUNCATE TABLE player_events"), ("rewritten",),
                         ("rewritten",)]


def test_a_listener_hears_only_while_its_owner_keeps_it() -> None:
    dropped: list[News] = []
    Heard(dropped)  # kept by no one
    gc.collect()
    kept = Heard([])
    insert_events(LoggingStorage([], exclusive=True), _events(7, 3))
    assert dropped == [] and len(kept.log) == 1


@pytest.mark.chdb
def test_the_embedded_sink_announces_a_batch_once_its_rows_are_readable(
        storage: Storage) -> None:
    client, other = fresh_client_id(), fresh_client_id()

    def stored() -> int:
        return int(storage.query(
            "SELECT count() FROM player_events WHERE client_id IN ({a:UInt32}, {b:UInt32})",
            {"a": client, "b": other})[0][0])

    heard = Heard([], look=stored)

    async def scenario() -> None:
        sink = EmbeddedSink(storage, linger_s=0.01)
        await sink.start()
        try:
            await asyncio.gather(*(sink.submit([e]) for e in _events(client, other)))
        finally:
            await sink.stop()

    asyncio.run(scenario())
    assert heard.log == [("inserted", frozenset({client, other}), NOON, NOON + 9, 3)]
