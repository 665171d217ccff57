from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from viewstats.core.events import PlayerEvent, as_row, insert_events, insert_json_rows
from viewstats.core.storage import Row, Storage, StorageError
from viewstats.ingest import wire

pytestmark = pytest.mark.chdb
NOON = 1_714_564_800_000


def _count(storage: Storage, table: str, client_id: int) -> int:
    column = "count()" if table == "player_events" else "sum(views)"
    return int(storage.query(f"SELECT {column} FROM {table} WHERE client_id = {{c:UInt32}}",
                             {"c": client_id})[0][0])


def test_bound_parameters_and_typed_results(storage: Storage) -> None:
    rows = storage.query("SELECT {n:UInt64} + 1, {s:String}, toDate({d:Date})",
                         {"n": 2**63, "s": "it's", "d": "2024-05-01"})
    assert rows == [(2**63 + 1, "it's", "2024-05-01")]


def test_millisecond_timestamps_are_stored_exactly(storage: Storage) -> None:
    client_id = fresh_client_id()
    stamps = [NOON + 1, NOON + 999, 4_102_444_799_999, 86_400_123]
    insert_events(storage, [watch(client_id, ts, "AU", i) for i, ts in enumerate(stamps)])
    got = storage.query("SELECT toUnixTimestamp64Milli(ts) FROM player_events "
                        "WHERE client_id = {c:UInt32} ORDER BY ts", {"c": client_id})
    assert [r[0] for r in got] == sorted(stamps)


def test_views_land_in_both_rollups_and_only_watch_counts(storage: Storage) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [watch(client_id, NOON, "AU", 1),
                            watch(client_id, NOON, "AU", 1, event="init"),
                            watch(client_id, NOON, "AU", 1, event="start")])
    assert _count(storage, "player_events", client_id) == 3
    assert _count(storage, "views_by_country_hourly", client_id) == 1
    assert _count(storage, "views_by_country_daily", client_id) == 1


def test_a_replayed_block_with_its_token_is_dropped_in_table_and_rollups(
        storage: Storage) -> None:
    client_id = fresh_client_id()
    block = [watch(client_id, NOON + i, "US", i) for i in range(5)]
    settings: dict[str, str | int] = {
        "insert_deduplication_token": f"player-events:0:{client_id}-{client_id + 4}",
        "deduplicate_blocks_in_dependent_materialized_views": 1}
    for _ in range(3):
        insert_events(storage, block, settings)
    for table in ("player_events", "views_by_country_hourly", "views_by_country_daily"):
        assert _count(storage, table, client_id) == 5, table
    insert_events(storage, block, {**settings, "insert_deduplication_token": "another"})
    assert _count(storage, "views_by_country_daily", client_id) == 10


def _stored(storage: Storage, client_ids: list[int]) -> list[PlayerEvent]:
    rows = storage.query(
        "SELECT client_id, toUnixTimestamp64Milli(ts), toString(event), toString(type), video_id,"
        " toString(view_id), toString(country), host FROM player_events"
        " WHERE has({c:Array(UInt32)}, client_id) ORDER BY ts",
        {"c": "[" + ",".join(map(str, client_ids)) + "]"})
    return [PlayerEvent(*row) for row in rows]


def _json_rows(storage: Storage, rows: wire.Rows, token: str | None = None) -> int:
    settings: dict[str, str | int] = {} if token is None else {
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1}
    return insert_json_rows(storage, rows.lines, rows.client_ids,
                            (min(rows.ts_ms), max(rows.ts_ms)), settings)


def test_json_rows_are_stored_as_the_consumer_decoded_them(storage: Storage) -> None:
    """The engine parses the messages' own JSON; the odd spellings (re-encoded by the
    consumer, with quotes, backslashes and non-ASCII in them) land as decode() reads them."""
    client_id, other = fresh_client_id(), fresh_client_id()
    events = [watch(client_id, NOON + i, "AU", i) for i in range(3)]
    events += [PlayerEvent(other, 4_102_444_799_999, "init", "live", "it's \\ \"é\" \t",
                           "00000000-0000-4000-8000-000000000009", "ZZ", ""),
               PlayerEvent(other, 86_400_001, "watch", "playlist", "v" * 256,
                           "00000000-0000-4000-8000-00000000000a", "NZ", "ä.example")]
    messages: list[bytes | None] = [wire.encode(e) for e in events]
    messages[3] = orjson.dumps(dict(reversed(as_row(events[3]).items())))  # another spelling
    rows, rejected = wire.decode_many(messages)
    assert not rejected and rows.lines[0] == messages[0] and rows.lines[3] != messages[3]
    assert _json_rows(storage, rows) == 5
    assert _stored(storage, [client_id, other]) == sorted(events, key=lambda e: e.ts_ms)
    assert _count(storage, "views_by_country_daily", client_id) == 3
    assert _count(storage, "views_by_country_daily", other) == 1


def test_a_replayed_json_block_with_its_token_is_dropped_in_table_and_rollups(
        storage: Storage) -> None:
    client_id = fresh_client_id()
    rows = wire.Rows.of([watch(client_id, NOON + i, "US", i) for i in range(5)])
    for _ in range(3):
        _json_rows(storage, rows, f"player-events:1:{client_id}-{client_id + 4}")
    for table in ("player_events", "views_by_country_hourly", "views_by_country_daily"):
        assert _count(storage, table, client_id) == 5, table
    _json_rows(storage, rows, f"another:{client_id}")
    assert _count(storage, "views_by_country_daily", client_id) == 10


def test_errors_surface_as_storage_errors(storage: Storage) -> None:
    with pytest.raises(StorageError, match="UNKNOWN_TABLE"):
        storage.query("SELECT * FROM no_such_table")
    with pytest.raises(StorageError):
        storage.insert("player_events", {"client_id": ["x"]})
    with pytest.raises(StorageError, match="invalid setting"):
        storage.query("SELECT 1", settings={"x; DROP": 1})


# A GROUP BY of a million keys: past 1 ms and 1 MiB on any machine.
_COSTLY = ("SELECT count() FROM (SELECT number % 1000003 AS k, count() FROM numbers(3000000) "
           "GROUP BY k)")


@pytest.mark.parametrize(("settings", "error"), [
    ({"max_execution_time": "0.001"}, "TIMEOUT_EXCEEDED"),
    ({"max_memory_usage": 1 << 20}, "MEMORY_LIMIT_EXCEEDED"),
])
def test_a_query_past_its_engine_limit_fails_and_the_next_ones_answer(
        storage: Storage, settings: dict[str, str | int], error: str) -> None:
    with pytest.raises(StorageError, match=error):
        storage.query(_COSTLY, settings=settings)
    # chDB returned the stopped query's output before the next query's own (on the connection
    # the pool hands out next), which did not parse.
    for n in range(4):
        assert storage.query("SELECT {n:UInt8}", {"n": n}) == [(n,)]


def rows_of(columns: list[npt.NDArray[Any]]) -> list[Row]:
    """The rows of query_columns' answer, as Python values (numpy's `tolist`)."""
    return list(zip(*(column.tolist() for column in columns), strict=True))


_ENUM = "CAST('init', 'Enum8(''watch'' = 1, ''init'' = 2)')"
_NOON_S = NOON // 1000


def test_columns_are_numpy_arrays_of_int64_uint64_and_str(storage: Storage) -> None:
    columns = storage.query_columns(
        "SELECT {n:UInt64} + 1, toUInt8(7), toInt32(-4), toInt64({i:Int64}), {s:String},"
        f" toLowCardinality({{s:String}}), toFixedString('ab', 2), toString({_ENUM}), {_ENUM},"
        " toUnixTimestamp({t:DateTime('UTC')}), {t:DateTime('UTC')}, toDate({t:DateTime('UTC')})",
        {"n": 2**63, "i": -2**62, "s": "it's \\ \t é", "t": _NOON_S})
    assert [str(c.dtype) for c in columns] == ["uint64", "uint64", "int64", "int64", "object",
                                                "object", "object", "object", "int64", "uint64",
                                                "uint64", "datetime64[D]"]
    assert rows_of(columns) == [(2**63 + 1, 7, -4, -2**62, "it's \\ \t é", "it's \\ \t é",
                                 "ab", "init", 2, _NOON_S, _NOON_S, date(2024, 5, 1))]
    assert all(type(c[0]) is str for c in columns[4:8])
    assert all(c.flags.writeable for c in columns)


def test_an_empty_answer_still_has_its_typed_columns(storage: Storage) -> None:
    sql = ("SELECT number AS n, toString(number) AS s, toInt8(n) AS i FROM numbers(3)"
           " WHERE number > {n:UInt64}")
    columns = storage.query_columns(sql, {"n": 10})
    assert [(len(c), str(c.dtype)) for c in columns] == [(0, "uint64"), (0, "object"),
                                                         (0, "int64")]
    assert storage.query(sql, {"n": 10}) == []


def test_columns_equal_the_rows_of_query(storage: Storage) -> None:
    client_id = fresh_client_id()
    events = [watch(client_id, NOON + i, "AU", i) for i in range(3)]
    events += [PlayerEvent(client_id, NOON + 9, "init", "live", "it's \\ \"é\" \t",
                           "00000000-0000-4000-8000-000000000009", "ZZ", "ä.example")]
    insert_events(storage, events)
    sql = ("SELECT client_id, toUnixTimestamp64Milli(ts), toString(event), video_id,"
           " toString(view_id), country, host FROM player_events WHERE client_id = {c:UInt32}"
           " ORDER BY ts")
    rows = storage.query(sql, {"c": client_id})
    assert len(rows) == 4
    assert rows_of(storage.query_columns(sql, {"c": client_id})) == rows
    # An answer of many blocks (Arrow record batches, a dictionary each) is one array a column.
    many = ("SELECT number, concat('v-', toString(number)), toLowCardinality(toString(number % 7))"
            " FROM numbers(50000)")
    settings = {"max_block_size": 1000}
    assert rows_of(storage.query_columns(many, settings=settings)) == storage.query(
        many, settings=settings)


def test_columns_outlive_the_answers_after_them(storage: Storage) -> None:
    """The arrays stay valid once chDB has freed its answer's buffer and reused the memory.
    One block: an array of one Arrow chunk could be a view of the buffer, not a copy."""
    first = storage.query_columns("SELECT number * 3, number / 2 FROM numbers(100000)",
                                  settings={"max_block_size": 1 << 20})
    for _ in range(8):
        storage.query_columns("SELECT repeat('z', 100), 7 FROM numbers(100000)")
    assert (first[0] == np.arange(100000) * 3).all()
    assert (first[1] == np.arange(100000) / 2).all()


def test_refused_column_reads_are_storage_errors(storage: Storage) -> None:
    with pytest.raises(StorageError, match="UNKNOWN_TABLE"):
        storage.query_columns("SELECT * FROM no_such_table")
    with pytest.raises(StorageError, match="holds NULL"):
        storage.query_columns("SELECT toNullable(1) UNION ALL SELECT NULL")


def test_columns_past_an_engine_limit_fail_and_the_next_ones_answer(storage: Storage) -> None:
    with pytest.raises(StorageError, match="TIMEOUT_EXCEEDED"):
        storage.query_columns(_COSTLY, settings={"max_execution_time": "0.001"})
    for n in range(4):
        assert rows_of(storage.query_columns("SELECT {n:UInt8}", {"n": n})) == [(n,)]
