"""The answer cache never serves an answer a write has changed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.support.api import auth_header, countries, query_client, watch
from tests.support.database import fresh_client_id
from viewstats.core.events import insert_events
from viewstats.core.storage import Storage
from viewstats.query_api.cache import AnswerCache, Key

HOUR_MS = 3_600_000
BASE_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
KEY = Key(7, None, BASE_MS, BASE_MS + HOUR_MS)


def _write(cache: AnswerCache, client_id: int, *stamps: int) -> None:
    cache.on_write("player_events", {"client_id": [client_id] * len(stamps),
                                     "ts": list(stamps)})


def test_a_write_inside_the_window_drops_the_answer_and_outside_keeps_it() -> None:
    cache = AnswerCache()
    cache.store(KEY, [("AU", 1)], cache.begin())
    _write(cache, 7, BASE_MS + HOUR_MS)  # the window's end is exclusive
    _write(cache, 8, BASE_MS + 5)  # another client
    cache.on_write("consumer_batches", {"topic": ["t"]})
    assert cache.get(KEY) == [("AU", 1)]
    _write(cache, 7, BASE_MS - 10, BASE_MS + 10)
    assert cache.get(KEY) is None


def test_an_answer_read_before_a_write_of_its_client_is_not_stored() -> None:
    cache = AnswerCache()
    token = cache.begin()
    _write(cache, 7, BASE_MS + 2 * HOUR_MS)  # lands while the query runs
    cache.store(KEY, [("AU", 1)], token)
    assert cache.get(KEY) is None
    cache.store(KEY, [("AU", 1)], cache.begin())
    cache.on_write(None, None)  # DDL, TRUNCATE, INSERT ... SELECT: anything may change
    assert cache.get(KEY) is None
    cache.store(KEY, [("AU", 1)], cache.begin())
    cache.on_write("player_events", {"view_id": ["x"]})  # a block it cannot place
    assert cache.get(KEY) is None


def test_the_oldest_answers_go_first_past_the_bound() -> None:
    cache = AnswerCache(max_entries=2)
    keys = [KEY._replace(start_ms=BASE_MS + i) for i in range(3)]
    for key in keys:
        cache.store(key, [], cache.begin())
    assert [cache.get(k) for k in keys] == [None, [], []]


@pytest.mark.chdb
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(1, 3)),
                      min_size=1, max_size=25))
def test_interleaved_writes_and_reads_on_one_app_stay_exact(
        storage: Storage, tmp_path_factory: pytest.TempPathFactory,
        steps: list[tuple[bool, int, int]]) -> None:
    keys = tmp_path_factory.mktemp("keys") / "api_keys"
    client_id = fresh_client_id()
    headers = auth_header(keys, client_id)
    app = query_client(storage, keys)
    stored: list[int] = []
    for number, (write, hour, hours) in enumerate(steps):
        at = BASE_MS + hour * HOUR_MS + 1234
        if write:
            insert_events(storage, [watch(client_id, at, "AU", number)])
            stored.append(at)
            continue
        start, end = BASE_MS + hour * HOUR_MS, BASE_MS + (hour + hours) * HOUR_MS
        expected = Counter("AU" for ts in stored if start <= ts < end)
        got = countries(app, headers, date_from=_iso(start), date_to=_iso(end - 1))
        assert got == dict(expected)


@pytest.mark.chdb
def test_a_repeated_window_is_answered_without_the_database(storage: Storage,
                                                           tmp_path: Path) -> None:
    client_id = fresh_client_id()
    headers = auth_header(tmp_path / "keys", client_id)
    app = query_client(storage, tmp_path / "keys")
    insert_events(storage, [watch(client_id, BASE_MS + 1234, "US", 1)])
    window = {"date_from": "2024-05-01", "date_to": "2024-05-02"}
    assert countries(app, headers, **window) == {"US": 1}
    before = {s: _answers(s) for s in ("cache", "database")}
    assert countries(app, headers, **window) == {"US": 1}
    assert _answers("cache") == before["cache"] + 1
    insert_events(storage, [watch(client_id, BASE_MS + 5678, "US", 2)])
    assert countries(app, headers, **window) == {"US": 2}
    assert _answers("database") == before["database"] + 1


def _answers(source: str) -> float:
    return REGISTRY.get_sample_value("viewstats_query_answers_total", {"source": source}) or 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"
