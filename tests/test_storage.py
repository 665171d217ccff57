from __future__ import annotations

import orjson
import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from viewstats.core.events import PlayerEvent, as_row, insert_events, insert_json_rows
from viewstats.core.storage import Storage, StorageError
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
