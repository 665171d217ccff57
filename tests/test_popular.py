"""`/streaming/statistics/popular` equals a brute-force count for any window, filters, event
and limit, most viewed first; `limit` is checked and defaults to 100; keys keep clients apart;
a parameter it does not take is a 400."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import auth_header, query_client, watch
from tests.support.breakdowns import (
    brute_force,
    counted_events,
    filter_values,
    filtered_and_counted,
    rich_events,
    store_only,
)
from tests.support.database import fresh_client_id
from tests.support.windows import BASE_MS, draw_window
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

POPULAR = "/streaming/statistics/popular"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, filters=filter_values, event=counted_events,
       limit=st.sampled_from([None, 1, 2, 1000]), data=st.data())
def test_popular_matches_brute_force(
        storage: Storage, keyed_clients: tuple[dict[int, dict[str, str]], Path],
        generated: list[tuple[tuple[int, int, str, str, str], str, str]],
        filters: dict[str, str], event: str | None, limit: int | None,
        data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store_only(storage, clients, generated)
    params = {**window.params, **filters, **({"event": event} if event else {})}
    if limit:
        params["limit"] = str(limit)
    client = query_client(storage, keys)
    for client_id in clients:
        response = client.get(POPULAR, params=params, headers=headers[client_id])
        assert response.status_code == 200, response.text
        counts = brute_force(rows, client_id, window, keys=("id",), filters=filters,
                             event=event)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        expected = [{"views": n, "id": video} for (video,), n in ranked][:limit or 100]
        assert response.json() == {"data": expected}, (params, client_id)


def test_limit_defaults_to_100(storage: Storage, tmp_path: Path) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [
        PlayerEvent(client_id, BASE_MS + i, "watch", "vod", f"v-{i:03d}",
                    f"00000000-0000-4000-8000-{i:012x}", "AU", "") for i in range(101)])
    headers = auth_header(tmp_path / "keys", client_id)
    response = query_client(storage, tmp_path / "keys").get(
        POPULAR, params={"date_from": "2024-02-27", "date_to": "2024-02-27"}, headers=headers)
    ids = [row["id"] for row in response.json()["data"]]
    assert ids == [f"v-{i:03d}" for i in range(100)]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "1.5", "ten", "", "99999999999"])
def test_a_limit_out_of_range_is_a_400_naming_it(storage: Storage, tmp_path: Path,
                                                 limit: str) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [watch(client_id, BASE_MS, "AU", 1)])
    headers = auth_header(tmp_path / "keys", client_id)
    response = query_client(storage, tmp_path / "keys").get(
        POPULAR, params={"date_from": "2024-02-27", "date_to": "2024-02-27", "limit": limit},
        headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "limit: query param is empty" if limit == "" else
        "limit: must be a whole number from 1 to 1000"]


@pytest.mark.parametrize(("sent", "stored"), [
    ({"country": "ZZ"}, {"country": "ZZ"}),  # answered every country's views before issue 20
    ({"host": "b.example", "event": "start"}, {"host": "b.example", "event": "start"}),
    ({"id": "v-3", "country": "au", "type": "vod"}, {"id": "v-3", "country": "AU"}),
])
def test_popular_counts_only_what_the_filters_select(storage: Storage, tmp_path: Path,
                                                     sent: dict[str, str],
                                                     stored: dict[str, str]) -> None:
    got, expected = filtered_and_counted(storage, tmp_path / "keys", POPULAR, "id", sent, stored)
    assert got == expected


def test_a_parameter_popular_does_not_take_is_a_400(storage: Storage, tmp_path: Path) -> None:
    headers = auth_header(tmp_path / "keys", fresh_client_id())
    response = query_client(storage, tmp_path / "keys").get(
        POPULAR, params={"date_from": "2024-02-27", "date_to": "2024-02-27", "group": "host"},
        headers=headers)
    assert (response.status_code, response.json()) == (400, {"data": [], "errors": [
        "group: unknown query param; this endpoint takes date_from, date_to, type, id, "
        "country, host, event, limit"]})
