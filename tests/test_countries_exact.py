"""The countries endpoint equals a brute-force count over the generated events, for any window."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import auth_header, countries, query_client, watch
from tests.support.database import fresh_client_id, truncate_events
from tests.support.windows import BASE_MS, HOUR_MS, draw_window, events
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, dict[str, str]], Path]:
    """Three clients with their auth headers, made before any app reads the key file."""
    keys = tmp_path_factory.mktemp("keys") / "api_keys"
    return {c: auth_header(keys, c) for c in (fresh_client_id() for _ in range(3))}, keys


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=events, type_filter=st.sampled_from([None, "vod", "live"]), data=st.data())
def test_api_matches_brute_force(storage: Storage, setup: tuple[dict[int, dict[str, str]], Path],
                                 generated: list[tuple[int, int, str, str, str]],
                                 type_filter: str | None, data: st.DataObject) -> None:
    window = draw_window(data, [offset for _, offset, *_ in generated])
    headers, keys = setup
    clients = list(headers)
    truncate_events(storage)
    rows: list[PlayerEvent] = [
        watch(clients[c], BASE_MS + offset, country, i, event=event, type_=kind)
        for i, (c, offset, country, event, kind) in enumerate(generated)]
    if rows:
        insert_events(storage, rows, {"insert_deduplicate": 0})
    client = query_client(storage, keys)
    params = dict(window.params)
    if type_filter:
        params["type"] = type_filter
    for client_id in clients:
        expected = Counter(e.country for e in rows if e.client_id == client_id
                           and e.event == "watch" and window.start_ms <= e.ts_ms < window.end_ms
                           and type_filter in (None, e.type))
        got = countries(client, headers[client_id], **params)
        assert got == dict(expected), (params, client_id)


def test_rows_are_sorted_by_views_then_country(storage: Storage, tmp_path: Path) -> None:
    client_id = fresh_client_id()
    at = BASE_MS + 90 * 60_000
    rows = [watch(client_id, at, c, i) for i, c in enumerate(
        ["US", "US", "AU", "AU", "DE", "ZZ", "ZZ", "ZZ", "XK"])]
    insert_events(storage, rows)
    headers = auth_header(tmp_path / "keys", client_id)
    response = query_client(storage, tmp_path / "keys").get(
        "/streaming/statistics/countries", headers=headers,
        params={"date_from": "2024-02-27", "date_to": "2024-02-27"})
    assert response.json() == {"data": [
        {"views": 3, "country": "ZZ", "country_name": "Unknown"},
        {"views": 2, "country": "AU", "country_name": "Australia"},
        {"views": 2, "country": "US", "country_name": "United States"},
        {"views": 1, "country": "DE", "country_name": "Germany"},
        {"views": 1, "country": "XK", "country_name": "Kosovo"},
    ]}


EDGE_MS = BASE_MS + 5 * HOUR_MS + 1234  # 2024-02-27T05:00:01.234Z


@pytest.mark.parametrize(("date_from", "date_to", "views"), [
    ("2024-02-27T05:00:01.234Z", "2024-02-27T05:00:01.234Z", 1),
    ("2024-02-27T05:00:01.2341Z", "2024-02-27T06:00:00Z", 0),
    ("2024-02-27T05:00:01.2339Z", "2024-02-27T06:00:00Z", 1),
    ("2024-02-27T05:00:01.235Z", "2024-02-27T06:00:00Z", 0),
    ("2024-02-27T04:00:00Z", "2024-02-27T05:00:01.233Z", 0),
    ("2024-02-27T04:00:00Z", "2024-02-27T05:00:01.233999999Z", 0),
    ("2024-02-27T04:00:00Z", "2024-02-27T05:00:01.234000000Z", 1),
    ("2024-02-27T04:00:00Z", "2024-02-27T05:00:01Z", 1),
    ("2024-02-27T04:00:00Z", "2024-02-27T05:00Z", 1),
    ("2024-02-27T04:00:00Z", "2024-02-27T04:59:59.999Z", 0),
    ("2024-02-27T10:30:01.234+05:30", "2024-02-27T10:30:01.234+05:30", 1),
    ("2024-02-27T02:00:01.235-03:00", "2024-02-28", 0),
    ("2024-02-27", "2024-02-27", 1),
    ("2024-02-26", "2024-02-26", 0),
])
def test_window_edges_are_exact(storage: Storage, tmp_path: Path, date_from: str, date_to: str,
                                views: int) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [watch(client_id, EDGE_MS, "AU", 1)])
    headers = auth_header(tmp_path / "keys", client_id)
    got = countries(query_client(storage, tmp_path / "keys"), headers,
                    date_from=date_from, date_to=date_to)
    assert got == ({"AU": views} if views else {})


def test_id_and_host_filter_the_countries(storage: Storage, tmp_path: Path) -> None:
    client_id = fresh_client_id()
    at = BASE_MS + 90 * 60_000
    rows = [PlayerEvent(client_id, at, "watch", "vod", video, f"00000000-0000-4000-8000-{i:012x}",
                        country, host)
            for i, (video, host, country) in enumerate([
                ("v-1", "a.example", "US"), ("v-1", "b.example", "AU"),
                ("v-2", "a.example", "US"), ("v-2", "a.example", "DE")])]
    insert_events(storage, rows)
    headers = auth_header(tmp_path / "keys", client_id)
    client = query_client(storage, tmp_path / "keys")
    day = {"date_from": "2024-02-27", "date_to": "2024-02-27"}
    assert countries(client, headers, **day) == {"US": 2, "AU": 1, "DE": 1}
    assert countries(client, headers, **day, id="v-1") == {"US": 1, "AU": 1}
    assert countries(client, headers, **day, host="a.example") == {"US": 2, "DE": 1}
    assert countries(client, headers, **day, id="v-2", host="a.example") == {"US": 1, "DE": 1}
    response = client.get("/streaming/statistics/countries", headers=headers,
                          params={**day, "id": ""})
    assert response.status_code == 400 and "id" in response.text
