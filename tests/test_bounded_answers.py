"""Every statistics answer is bounded by the row cap (QUERY_MAX_ROWS), over real HTTP on the
engine: the request of issue 19's finding 1 (every group field, hourly, over all time) is a 422
in the common error shape that says how to narrow it once its answer would pass the cap, while
an answer of exactly the cap is served; `hosts` takes `limit` as `popular` does, and without it
the cap bounds it too; countries are served as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.api import auth_header, query_client
from tests.support.database import fresh_client_id
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
HOUR_MS = 3_600_000
HOSTS = ("a.example", "b.example", "c.example", "d.example", "e.example", "f.example")
CAP = 5
ALL_TIME = {"date_from": "1970-01-01", "date_to": "2099-12-31"}
FINDING_1 = {**ALL_TIME, "granularity": "1h", "group": "host,country,event,id"}
VIEWS, HOSTS_PATH = "/streaming/statistics/views", "/streaming/statistics/hosts"
POPULAR, COUNTRIES = "/streaming/statistics/popular", "/streaming/statistics/countries"


def _events(client_id: int) -> list[PlayerEvent]:
    """Host i has 6 - i watches (a.example the most) of its own video, each in its own hour,
    from AU or US."""
    events, n = [], 0
    for rank, host in enumerate(HOSTS):
        for _ in range(len(HOSTS) - rank):
            events.append(PlayerEvent(client_id, START_MS + n * HOUR_MS, "watch", "vod",
                                      f"v-{host[0]}",
                                      f"00000000-0000-4000-8000-{n:012x}",
                                      "AU" if n % 2 else "US", host))
            n += 1
    return events


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           _session_storage: Storage) -> tuple[TestClient, dict[str, str]]:
    """The query API with a cap of CAP rows, and the key of a client holding `_events`."""
    keys = tmp_path_factory.mktemp("bounded") / "api_keys"
    client_id = fresh_client_id()
    headers = auth_header(keys, client_id)
    insert_events(_session_storage, _events(client_id))
    client = query_client(_session_storage, keys, Settings(query_max_rows=CAP))
    return client, headers


def _get(served: tuple[TestClient, dict[str, str]], path: str,
         params: dict[str, str]) -> tuple[int, dict[str, object]]:
    client, headers = served
    response = client.get(path, params=params, headers=headers)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def test_the_unbounded_views_request_is_a_422_that_says_how_to_narrow_it(
        served: tuple[TestClient, dict[str, str]], storage: Storage) -> None:
    del storage  # requested for the chdb marker check
    assert _get(served, VIEWS, FINDING_1) == (422, {"data": [], "errors": [
        f"the answer would have more than {CAP} rows; narrow the request: a shorter window "
        "(date_from, date_to), granularity=1d, fewer group fields, or a filter (id, country, "
        "host, event, type)"]})


def test_a_narrowed_request_is_answered(served: tuple[TestClient, dict[str, str]],
                                        storage: Storage) -> None:
    del storage
    # The first five hours hold five rows: exactly the cap.
    status, body = _get(served, VIEWS, {**FINDING_1, "date_from": "2024-05-01T00:00:00Z",
                                        "date_to": "2024-05-01T04:59:59Z"})
    assert status == 200 and len(body["data"]) == CAP  # type: ignore[arg-type]
    assert _get(served, VIEWS, {**ALL_TIME, "group": "country"}) == (200, {"data": [
        {"views": 10, "date": "2024-05-01", "type": "vod", "country": "AU"},
        {"views": 11, "date": "2024-05-01", "type": "vod", "country": "US"}]})


def test_hosts_take_a_limit_most_viewed_first(served: tuple[TestClient, dict[str, str]],
                                              storage: Storage) -> None:
    del storage
    assert _get(served, HOSTS_PATH, {**ALL_TIME, "limit": "2"}) == (200, {"data": [
        {"views": 6, "host": "a.example"}, {"views": 5, "host": "b.example"}]})
    assert _get(served, HOSTS_PATH, {**ALL_TIME, "limit": "1001"}) == (400, {"data": [], "errors": [
        "limit: must be a whole number from 1 to 1000"]})


def test_hosts_without_a_limit_are_capped(served: tuple[TestClient, dict[str, str]],
                                          storage: Storage) -> None:
    del storage
    assert _get(served, HOSTS_PATH, ALL_TIME) == (422, {"data": [], "errors": [
        f"the answer would have more than {CAP} rows; narrow the request: limit (the most "
        "viewed hosts first), or a shorter window (date_from, date_to)"]})
    # a limit past the cap is capped as well
    assert _get(served, HOSTS_PATH, {**ALL_TIME, "limit": "6"})[0] == 422


def test_popular_past_the_cap_asks_for_a_smaller_limit(
        served: tuple[TestClient, dict[str, str]], storage: Storage) -> None:
    del storage
    assert _get(served, POPULAR, ALL_TIME) == (422, {"data": [], "errors": [
        f"the answer would have more than {CAP} rows; narrow the request: a smaller limit"]})
    status, body = _get(served, POPULAR, {**ALL_TIME, "limit": str(CAP)})
    assert status == 200 and [row["id"] for row in body["data"]] == [  # type: ignore[attr-defined]
        "v-a", "v-b", "v-c", "v-d", "v-e"]


@pytest.mark.parametrize("extra", [{}, {"host": "a.example"}, {"id": "v-a"}])
def test_countries_are_unaffected(served: tuple[TestClient, dict[str, str]], storage: Storage,
                                  extra: dict[str, str]) -> None:
    del storage
    status, body = _get(served, COUNTRIES, {**ALL_TIME, **extra})
    assert status == 200
    assert {row["country"] for row in body["data"]} == {"AU", "US"}  # type: ignore[attr-defined]



MANY_VIDEOS = 1_000_000
# Counting every one of MANY_VIDEOS takes more engine memory than this (it took 64 to 160 MB
# here); stopping at the cap takes less (under 16 MB).
MEMORY_MB = 32


@pytest.mark.parametrize(("cap", "status"), [
    # The engine aggregates every video, past the memory limit: the limit's 503.
    (MANY_VIDEOS, 503),
    # The engine stops once the videos pass the cap: the cap's 422, within the memory limit.
    (CAP, 422),
])
def test_the_engine_stops_aggregating_at_the_cap(tmp_path: Path, storage: Storage, cap: int,
                                                 status: int) -> None:
    client_id = fresh_client_id()
    storage.command(
        "INSERT INTO player_events (client_id, ts, event, type, video_id, view_id, country, host)"
        f" SELECT {client_id}, toDateTime64('2024-02-27 10:00:00', 3, 'UTC')"
        " + toIntervalMillisecond(number), 'watch', 'vod', toString(number),"
        f" generateUUIDv4(number), 'AU', 'a.example' FROM numbers({MANY_VIDEOS})")
    keys = tmp_path / "api_keys"
    headers = auth_header(keys, client_id)
    client = query_client(storage, keys,
                          Settings(query_max_rows=cap, query_max_memory_mb=MEMORY_MB))
    response = client.get(VIEWS, params={"date_from": "2024-02-27", "date_to": "2024-02-27",
                                         "group": "id", "country": "AU"}, headers=headers)
    assert response.status_code == status, response.json()
