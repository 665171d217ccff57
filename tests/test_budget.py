"""Each client's budget of engine queries (query_api/budget.py), over HTTP against the real app
on the test database: a client's queries past its turns wait, then get 429 with Retry-After,
while another client is served; a query past an engine limit gets 503 naming it; answers from
sealed buckets take no turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gcore
import httpx
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from tests.support.api import COUNTRIES, auth_header, watch
from tests.support.database import fresh_client_id
from tests.support.windows import BASE_MS
from viewstats.core.events import insert_events
from viewstats.core.keys import KeyStore
from viewstats.core.settings import Settings
from viewstats.core.storage import Params, QuerySettings, Row, Storage
from viewstats.query_api.app import query_routes
from viewstats.query_api.budget import LIMIT_RETRY_AFTER_S
from viewstats.server import build_app

pytestmark = pytest.mark.chdb

T = TypeVar("T")
VIEWS = "/streaming/statistics/views"
DAY = {"date_from": "2024-02-27", "date_to": "2024-02-27"}
# Views per hour keep no buckets: every such request is an engine query, in the client's budget.
HOURLY = {**DAY, "granularity": "1h"}


class Gate:
    """Holds the gated client's budgeted queries (those carrying the engine limits) until
    opened; counts how many ran at once."""

    def __init__(self, storage: Storage, client_id: int) -> None:
        self._query, self._query_columns = storage.query, storage.query_columns
        self.client_id = client_id
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self.running = self.most = 0
        self.priorities: list[object] = []  # of each gated query, in the order they came

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        return self._held(self._query, sql, params, settings)

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        return self._held(self._query_columns, sql, params, settings)

    def _held(self, read: Callable[..., T], sql: str, params: Params | None,
              settings: QuerySettings | None) -> T:
        if (params or {}).get("client_id") != self.client_id or (
                "max_execution_time" not in (settings or {})):
            return read(sql, params, settings)
        with self._lock:
            self.priorities.append((settings or {}).get("priority"))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.opened.wait(60), "the test never opened the gate"
            return read(sql, params, settings)
        finally:
            with self._lock:
                self.running -= 1


def _waiting() -> float:
    return REGISTRY.get_sample_value("viewstats_query_waiting") or 0.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.01)


@dataclass
class Api:
    client: TestClient
    gate: Gate
    pool: ThreadPoolExecutor

    def send(self, headers: dict[str, str], count: int) -> list[Future[httpx.Response]]:
        """`count` views requests at once, each from its own thread."""
        return [self.pool.submit(self.client.get, VIEWS, params=HOURLY, headers=headers)
                for _ in range(count)]


@contextmanager
def _api(storage: Storage, keys: Path, monkeypatch: pytest.MonkeyPatch, gated: int,
         settings: Settings | None = None) -> Iterator[Api]:
    gate = Gate(storage, gated)
    monkeypatch.setattr(storage, "query", gate.query)
    monkeypatch.setattr(storage, "query_columns", gate.query_columns)
    app = build_app(query_routes(storage, KeyStore(keys), settings=settings))
    # One event loop for every thread's requests, as a server has.
    with TestClient(app) as client, ThreadPoolExecutor(16) as pool:
        try:
            yield Api(client, gate, pool)
        finally:
            gate.opened.set()


def _refusal(response: httpx.Response, status: int, names: str) -> None:
    assert response.status_code == status, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["data"] == [] and len(body["errors"]) == 1 and names in body["errors"][0]


def test_a_client_past_its_queue_gets_429_while_another_client_is_served(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    busy, other = fresh_client_id(), fresh_client_id()
    insert_events(storage, [watch(c, BASE_MS + 1000, "AU", c) for c in (busy, other)])
    keys = tmp_path / "keys"
    busy_headers, other_headers = auth_header(keys, busy), auth_header(keys, other)
    with _api(storage, keys, monkeypatch, busy, Settings(
            query_client_concurrency=2, query_queue_depth=1, query_queue_wait_ms=60_000)) as api:
        held = api.send(busy_headers, 3)
        _until(lambda: api.gate.running == 2 and _waiting() == 1)
        refused = api.client.get(VIEWS, params=HOURLY, headers=busy_headers)
        _refusal(refused, 429, "QUERY_QUEUE_DEPTH")
        served = api.client.get(VIEWS, params=HOURLY, headers=other_headers)
        assert served.status_code == 200 and served.json()["data"][0]["views"] == 1
        api.gate.opened.set()
        assert [f.result().status_code for f in held] == [200] * 3
    assert api.gate.most == 2


def test_a_turn_that_does_not_come_in_time_gets_429(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    busy = fresh_client_id()
    headers = auth_header(tmp_path / "keys", busy)
    with _api(storage, tmp_path / "keys", monkeypatch, busy, Settings(
            query_client_concurrency=1, query_queue_depth=1, query_queue_wait_ms=50)) as api:
        held = api.send(headers, 1)
        _until(lambda: api.gate.running == 1)
        refused = api.client.get(VIEWS, params=HOURLY, headers=headers)
        _refusal(refused, 429, "QUERY_QUEUE_WAIT_MS")
        api.gate.opened.set()
        assert held[0].result().status_code == 200
    assert api.gate.priorities == [1]  # alone in its line: the engine's first priority


def test_eight_requests_at_once_of_one_client_are_all_answered(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default budget: the turns of 2 run, 6 wait for theirs, none is refused."""
    client_id = fresh_client_id()
    headers = auth_header(tmp_path / "keys", client_id)
    with _api(storage, tmp_path / "keys", monkeypatch, client_id) as api:
        held = api.send(headers, 8)
        _until(lambda: api.gate.running == 2 and _waiting() == 6)
        api.gate.opened.set()
        assert [f.result().status_code for f in held] == [200] * 8
    # Those that started while others of the client waited yielded to other clients'.
    assert api.gate.priorities.count(2) >= 4 and set(api.gate.priorities) <= {1, 2}


COSTLY_ROWS = 200_000  # one per video: the tests raise the row cap so that only the limits refuse


def _many_videos(storage: Storage) -> int:
    """A client with enough distinct videos in one day for a grouped read past 1 ms and 1 MiB."""
    client_id = fresh_client_id()
    storage.command(
        "INSERT INTO player_events (client_id, ts, event, type, video_id, view_id, country, host)"
        f" SELECT {client_id}, toDateTime64('2024-02-27 10:00:00', 3, 'UTC')"
        " + toIntervalMillisecond(number), 'watch',"
        " 'vod', toString(number), generateUUIDv4(number), 'AU', 'a.example'"
        f" FROM numbers({COSTLY_ROWS})")
    return client_id


COSTLY = {**DAY, "group": "id", "country": "AU"}  # read from player_events


@pytest.mark.parametrize(("limits", "limit"), [
    (Settings(query_max_execution_ms=1, query_max_rows=COSTLY_ROWS),
     "QUERY_MAX_EXECUTION_MS = 1 ms (TIMEOUT_EXCEEDED)"),
    (Settings(query_max_memory_mb=1, query_max_rows=COSTLY_ROWS),
     "QUERY_MAX_MEMORY_MB = 1 MB (MEMORY_LIMIT_EXCEEDED)"),
])
def test_a_query_past_an_engine_limit_gets_503_naming_it(
        storage: Storage, tmp_path: Path, limits: Settings, limit: str) -> None:
    keys = tmp_path / "keys"
    headers = auth_header(keys, _many_videos(storage))
    limited = TestClient(build_app(query_routes(storage, KeyStore(keys), settings=limits)))
    _refusal(limited.get(VIEWS, params=COSTLY, headers=headers), 503, limit)
    # The limit refused it, not the query: within the default limits the same request answers.
    ordinary = TestClient(build_app(query_routes(storage, KeyStore(keys),
                                                 settings=Settings(query_max_rows=COSTLY_ROWS))))
    answered = ordinary.get(VIEWS, params=COSTLY, headers=headers)
    assert answered.status_code == 200 and len(answered.json()["data"]) == COSTLY_ROWS


def test_gcore_sdk_retries_a_503_after_its_retry_after_then_raises_it(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gcore's SDK, unchanged, retries 429 and 5xx, waiting what Retry-After says (up to 60 s),
    then raises the error with our message."""
    keys = tmp_path / "keys"
    token = auth_header(keys, _many_videos(storage))["Authorization"].split(" ", 1)[1]
    app = build_app(query_routes(storage, KeyStore(keys),
                                 settings=Settings(query_max_execution_ms=1)))
    sent: list[httpx.Response] = []
    slept: list[float] = []
    monkeypatch.setattr("gcore._base_client.time.sleep", slept.append)  # time.sleep itself
    with TestClient(app) as http:
        http.event_hooks["response"].append(sent.append)
        sdk = gcore.Gcore(api_key=token, base_url=str(http.base_url), http_client=http,
                          max_retries=1)
        with pytest.raises(gcore.InternalServerError, match="QUERY_MAX_EXECUTION_MS"):
            sdk.streaming.statistics.get_views(date_from=DAY["date_from"],
                                               date_to=DAY["date_to"], group=["id"],
                                               country="AU")
    assert [r.status_code for r in sent] == [503, 503]
    assert slept == [LIMIT_RETRY_AFTER_S]


def test_answers_from_sealed_buckets_take_no_turn(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [watch(client_id, BASE_MS + 1000, "AU", 1)])
    headers = auth_header(tmp_path / "keys", client_id)
    with _api(storage, tmp_path / "keys", monkeypatch, client_id, Settings(
            query_client_concurrency=1, query_queue_depth=1, query_queue_wait_ms=60_000)) as api:
        api.gate.opened.set()
        # The first answer comes from the engine; its buckets are loaded in the background,
        # outside the budget (the gate would hold a budgeted load).
        assert api.client.get(COUNTRIES, params=DAY, headers=headers).status_code == 200
        hits = REGISTRY.get_sample_value("viewstats_sealed_lookups_total", {"result": "hit"})

        def from_memory() -> bool:
            answer = api.client.get(COUNTRIES, params=DAY, headers=headers)
            assert answer.status_code == 200
            return REGISTRY.get_sample_value("viewstats_sealed_lookups_total",
                                             {"result": "hit"}) != hits
        _until(from_memory)
        api.gate.opened.clear()
        held = api.send(headers, 2)  # one runs, one waits: the client's budget is full
        _until(lambda: api.gate.running == 1 and _waiting() == 1)
        refused = api.client.get(VIEWS, params=HOURLY, headers=headers)
        _refusal(refused, 429, "QUERY_QUEUE_DEPTH")
        answer = api.client.get(COUNTRIES, params=DAY, headers=headers)
        assert answer.status_code == 200
        assert answer.json()["data"] == [{"views": 1, "country": "AU",
                                          "country_name": "Australia"}]
        api.gate.opened.set()
        assert [f.result().status_code for f in held] == [200] * 2
