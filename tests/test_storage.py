from __future__ import annotations

import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from viewstats.core.events import insert_events
from viewstats.core.storage import Storage, StorageError

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


def test_errors_surface_as_storage_errors(storage: Storage) -> None:
    with pytest.raises(StorageError, match="UNKNOWN_TABLE"):
        storage.query("SELECT * FROM no_such_table")
    with pytest.raises(StorageError):
        storage.insert("player_events", {"client_id": ["x"]})
    with pytest.raises(StorageError, match="invalid setting"):
        storage.query("SELECT 1", settings={"x; DROP": 1})
