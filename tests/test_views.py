"""`/streaming/statistics/views` equals a brute-force count for any window, filters, groups and
granularity, answers bad parameters with a 400 naming each, and keeps clients apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import auth_header, query_client
from tests.support.breakdowns import (
    brute_force,
    counted_events,
    filter_values,
    rich_events,
    store_only,
)
from tests.support.database import fresh_client_id
from tests.support.windows import BASE_MS, HOUR_MS, draw_window
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

VIEWS = "/streaming/statistics/views"
GROUPS = ("host", "country", "event", "id")
TAKES = "date_from, date_to, type, id, country, host, event, group, granularity"


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, filters=filter_values,
       event=counted_events,
       group=st.lists(st.sampled_from(GROUPS), unique=True, max_size=3),
       hourly=st.booleans(), data=st.data())
def test_views_match_brute_force(storage: Storage,
                                 keyed_clients: tuple[dict[int, dict[str, str]], Path],
                                 generated: list[tuple[tuple[int, int, str, str, str], str, str]],
                                 filters: dict[str, str], event: str | None, group: list[str],
                                 hourly: bool, data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store_only(storage, clients, generated)
    params: dict[str, str | list[str]] = {**window.params, **filters}
    if event:
        params["event"] = event
    if group:  # as a comma list or repeated, both as Gcore takes it
        params["group"] = ",".join(group) if data.draw(st.booleans(), "comma") else group
    if hourly:
        params["granularity"] = "1h"
    ordered = tuple(g for g in GROUPS if g in group)
    client = query_client(storage, keys)
    for client_id in clients:
        response = client.get(VIEWS, params=params, headers=headers[client_id])
        assert response.status_code == 200, response.text
        got = response.json()["data"]
        fields = ("date", "type", *ordered)
        assert [sorted(row) for row in got] == [sorted(("views", *fields))] * len(got)
        keyed = [tuple(row[f] for f in fields) for row in got]
        assert keyed == sorted(keyed), "rows sorted by date, type, then the group fields"
        expected = brute_force(rows, client_id, window, keys=("type", *ordered),
                               bucket="hour" if hourly else "day", filters=filters, event=event)
        assert {k: row["views"] for k, row in zip(keyed, got, strict=True)} == dict(expected), (
            params, client_id)


def _get(storage: Storage, tmp_path: Path, client_id: int, **params: str) -> dict[str, object]:
    headers = auth_header(tmp_path / "keys", client_id)
    response = query_client(storage, tmp_path / "keys").get(VIEWS, params=params,
                                                              headers=headers)
    return {"status": response.status_code, **response.json()}


def test_rows_per_day_with_a_partial_first_and_last_day(storage: Storage, tmp_path: Path) -> None:
    client_id = fresh_client_id()
    at = [BASE_MS + 2 * HOUR_MS, BASE_MS + 20 * HOUR_MS, BASE_MS + 26 * HOUR_MS]
    insert_events(storage, [
        PlayerEvent(client_id, ts, "watch", kind, "v-1", f"00000000-0000-4000-8000-{i:012x}",
                    "AU", "example.com")
        for i, (ts, kind) in enumerate(zip(at, ["vod", "live", "vod"], strict=True))])
    got = _get(storage, tmp_path, client_id, date_from="2024-02-27T10:00:00Z",
               date_to="2024-02-28T03:00:00Z")
    assert got == {"status": 200, "data": [
        {"views": 1, "date": "2024-02-27", "type": "live"},
        {"views": 1, "date": "2024-02-28", "type": "vod"}]}
    hourly = _get(storage, tmp_path, client_id, date_from="2024-02-27", date_to="2024-02-28",
                  granularity="1h", group="host,country")
    assert hourly["data"] == [
        {"views": 1, "date": "2024-02-27T02:00:00Z", "type": "vod", "host": "example.com",
         "country": "AU"},
        {"views": 1, "date": "2024-02-27T20:00:00Z", "type": "live", "host": "example.com",
         "country": "AU"},
        {"views": 1, "date": "2024-02-28T02:00:00Z", "type": "vod", "host": "example.com",
         "country": "AU"}]


GROUP_BY = "group by host, country, event, id, browser, os, platform"


@pytest.mark.parametrize(("params", "errors"), [
    ({"group": "date"}, ["group: unknown field 'date'; " + GROUP_BY]),
    ({"group": "host,ip"}, ["group: ip cannot be grouped by: viewer IPs are not stored; "
                            + GROUP_BY]),
    ({"group": "colour"}, ["group: unknown field 'colour'; " + GROUP_BY]),
    ({"event": "play"}, ["event: must be one of init, start, watch"]),
    ({"granularity": "2h"}, ["granularity: must be one of 1d, 1h"]),
    ({"country": "AUS"}, ["country: must be an ISO 3166-1 alpha-2 code, e.g. AU"]),
    ({"id": "v" * 257}, ["id: at most 256 characters"]),
    ({"type": "film", "host": ""}, ["type: must be one of vod, live, playlist",
                                    "host: query param is empty"]),
    ({"date_from": None, "group": "ip"}, ["date_from: query param is not set",
                                          "group: ip cannot be grouped by: viewer IPs are not "
                                          "stored; " + GROUP_BY]),
    ({"limit": "5", "event": "play", "Group": "host"}, [
        "event: must be one of init, start, watch",
        f"limit: unknown query param; this endpoint takes {TAKES}",
        f"Group: unknown query param; this endpoint takes {TAKES}"]),
])
def test_bad_parameters_are_a_400_naming_each(storage: Storage, tmp_path: Path,
                                              params: dict[str, str | None],
                                              errors: list[str]) -> None:
    query = {k: v for k, v in ({"date_from": "2024-02-27", "date_to": "2024-02-28"}
                               | params).items() if v is not None}
    assert _get(storage, tmp_path, fresh_client_id(), **query) == {
        "status": 400, "data": [], "errors": errors}


def test_a_missing_or_wrong_key_is_a_401(storage: Storage, tmp_path: Path) -> None:
    client = query_client(storage, tmp_path / "keys")
    params = {"date_from": "2024-02-27", "date_to": "2024-02-28"}
    for headers in ({}, {"Authorization": "apikey 1$nope"}):
        response = client.get(VIEWS, params=params, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"data": [], "errors": [
            "authorization: a valid 'apikey <token>' is required"]}


@pytest.mark.parametrize("video_id", ["v\\1", "v\\", "v\t1", "v\n1", "v'1", "ü-1"])
def test_filter_values_match_exactly_whatever_their_characters(
        storage: Storage, tmp_path: Path, video_id: str) -> None:
    client_id = fresh_client_id()
    insert_events(storage, [
        PlayerEvent(client_id, BASE_MS, "watch", "vod", vid, f"00000000-0000-4000-8000-{i:012x}",
                    "AU", "example.com") for i, vid in enumerate([video_id, "v1", "v\\\\1"])])
    got = _get(storage, tmp_path, client_id, date_from="2024-02-27", date_to="2024-02-27",
               id=video_id, group="id")
    assert got == {"status": 200, "data": [
        {"views": 1, "date": "2024-02-27", "type": "vod", "id": video_id}]}
