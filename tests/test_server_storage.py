"""Server mode (architecture §9): `ServerStorage` through clickhouse-connect, over HTTP.

The database is the chDB endpoint in a process of its own (tests/support/clickhouse_http.py), or a
real clickhouse-server container with VIEWSTATS_DOCKER=1. The storage and window tests written for
the embedded backend run here unchanged: this module's `storage` fixture overrides the session's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import lz4.frame  # type: ignore[import-untyped]
import pytest

import tests.test_countries_exact as countries_tests
import tests.test_storage as storage_tests
from tests.support.api import watch
from tests.support.database import fresh_client_id
from tests.support.server_mode import DOCKER, clickhouse_url
from viewstats.core.events import insert_events
from viewstats.core.storage import Storage, StorageError
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.schema.migrations import load_migrations, migrate

pytestmark = pytest.mark.chdb
NOON = storage_tests.NOON


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerStorage]]:
    tmp = tmp_path_factory.mktemp("server")
    with clickhouse_url(tmp / "clickhouse", tmp / "endpoint.log") as url:
        storage = ServerStorage(url)
        migrate(storage)
        yield url, storage
        storage.close()


@pytest.fixture
def storage(server: tuple[str, ServerStorage]) -> Storage:
    return server[1]


# The embedded backend's tests, collected again here where `storage` is the server.
test_bound_parameters_and_typed_results = storage_tests.test_bound_parameters_and_typed_results
test_millisecond_timestamps_are_stored_exactly = (
    storage_tests.test_millisecond_timestamps_are_stored_exactly)
test_views_land_in_both_rollups_and_only_watch_counts = (
    storage_tests.test_views_land_in_both_rollups_and_only_watch_counts)
test_a_replayed_block_with_its_token_is_dropped_in_table_and_rollups = (
    storage_tests.test_a_replayed_block_with_its_token_is_dropped_in_table_and_rollups)
test_json_rows_are_stored_as_the_consumer_decoded_them = (
    storage_tests.test_json_rows_are_stored_as_the_consumer_decoded_them)
test_a_replayed_json_block_with_its_token_is_dropped_in_table_and_rollups = (
    storage_tests.test_a_replayed_json_block_with_its_token_is_dropped_in_table_and_rollups)
test_columns_are_numpy_arrays_of_int64_uint64_and_str = (
    storage_tests.test_columns_are_numpy_arrays_of_int64_uint64_and_str)
test_an_empty_answer_still_has_its_typed_columns = (
    storage_tests.test_an_empty_answer_still_has_its_typed_columns)
test_columns_equal_the_rows_of_query = storage_tests.test_columns_equal_the_rows_of_query
test_refused_column_reads_are_storage_errors = (
    storage_tests.test_refused_column_reads_are_storage_errors)
test_columns_past_an_engine_limit_fail_and_the_next_ones_answer = (
    storage_tests.test_columns_past_an_engine_limit_fail_and_the_next_ones_answer)
test_rows_are_sorted_by_views_then_country = (
    countries_tests.test_rows_are_sorted_by_views_then_country)
test_window_edges_are_exact = countries_tests.test_window_edges_are_exact


def test_migrating_again_is_a_no_op(storage: Storage) -> None:
    assert migrate(storage) == []
    recorded = storage.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name) for m in load_migrations()]


def test_database_errors_surface_as_storage_errors(storage: Storage) -> None:
    # The embedded backend checks setting names itself; a server names the unknown setting.
    with pytest.raises(StorageError, match="UNKNOWN_TABLE"):
        storage.query("SELECT * FROM no_such_table")
    with pytest.raises(StorageError):
        storage.insert("player_events", {"client_id": ["x"]})
    with pytest.raises(StorageError, match="UNKNOWN_SETTING"):
        storage.query("SELECT 1", settings={"x; DROP": 1})


def test_an_uncompressed_client_reads_and_writes_too(server: tuple[str, ServerStorage]) -> None:
    url, compressed = server
    plain = ServerStorage(url + "?compress=false")
    client_id = fresh_client_id()
    try:
        insert_events(plain, [watch(client_id, NOON + i, "NZ", i) for i in range(3)])
        sql = "SELECT sum(views) FROM views_by_country_daily WHERE client_id = {c:UInt32}"
        assert plain.query(sql, {"c": client_id}) == compressed.query(sql, {"c": client_id})
        assert plain.query(sql, {"c": client_id}) == [(3,)]
    finally:
        plain.close()


def test_lz4_bodies_both_ways(server: tuple[str, ServerStorage]) -> None:
    client_id = fresh_client_id()
    row = f"{client_id}\t2024-05-01 12:00:00.000\twatch\tvod\tv-1\t{uuid.uuid4()}\tGB\tx.org\n"
    sent = httpx.post(server[0], headers={"Content-Encoding": "lz4"}, content=lz4.frame.compress(
        b"INSERT INTO player_events (client_id, ts, event, type, video_id, view_id, country, host) "
        b"FORMAT TabSeparated\n" + row.encode()))
    assert sent.status_code == 200, sent.text
    answer = httpx.post(server[0], params={"enable_http_compression": "1", "param_c": client_id},
                        headers={"Accept-Encoding": "lz4"},
                        content=b"SELECT count() FROM player_events WHERE client_id = {c:UInt32}")
    assert answer.headers["Content-Encoding"] == "lz4"
    assert lz4.frame.decompress(answer.content) == b"1\n"


def test_errors_arrive_the_way_clickhouse_sends_them(server: tuple[str, ServerStorage]) -> None:
    response = httpx.post(server[0], content=b"SELECT * FROM no_such_table")
    assert response.status_code == (404 if DOCKER else 500)  # a server maps codes to statuses
    assert response.headers["X-ClickHouse-Exception-Code"] == "60"
    assert response.text.startswith("Code: 60. DB::Exception: ")


@pytest.mark.skipif(DOCKER, reason="what the chDB endpoint refuses; a server supports it")
@pytest.mark.parametrize("params", [{"session_id": "s1"}, {"decompress": "1"},
                                    {"client_protocol_version": "54405"}])
def test_the_endpoint_refuses_what_it_does_not_implement(
        server: tuple[str, ServerStorage], params: dict[str, str]) -> None:
    response = httpx.post(server[0], params=params, content=b"SELECT 1")
    assert response.status_code == 501
    assert response.headers["X-ClickHouse-Exception-Code"] == "48"
    assert "NOT_IMPLEMENTED" in response.text
