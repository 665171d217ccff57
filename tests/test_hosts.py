"""`/streaming/statistics/hosts` equals a brute-force count for any window, filters and event,
most viewed first, with views from no host under ""; keys keep clients apart; a parameter it
does not take is a 400."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import query_client
from tests.support.breakdowns import (
    brute_force,
    counted_events,
    filter_values,
    filtered_and_counted,
    rich_events,
    store_only,
    three_clients,
)
from tests.support.windows import draw_window
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

HOSTS = "/streaming/statistics/hosts"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, filters=filter_values, event=counted_events, data=st.data())
def test_hosts_match_brute_force(storage: Storage,
                                 keyed_clients: tuple[dict[int, dict[str, str]], Path],
                                 generated: list[tuple[tuple[int, int, str, str, str], str, str]],
                                 filters: dict[str, str], event: str | None,
                                 data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store_only(storage, clients, generated)
    params = {**window.params, **filters, **({"event": event} if event else {})}
    client = query_client(storage, keys)
    for client_id in clients:
        response = client.get(HOSTS, params=params, headers=headers[client_id])
        assert response.status_code == 200, response.text
        counts = brute_force(rows, client_id, window, keys=("host",), filters=filters,
                             event=event)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        expected = [{"views": n, "host": host} for (host,), n in ranked]
        assert response.json() == {"data": expected}, (params, client_id)


def test_bad_parameters_are_a_400(storage: Storage, tmp_path: Path) -> None:
    headers = three_clients(tmp_path / "keys")
    response = query_client(storage, tmp_path / "keys").get(
        HOSTS, params={"date_to": "2024-02-27", "type": "film", "contry": "AU", "limit": "0",
                       "granularity": "1h"},
        headers=next(iter(headers.values())))
    takes = "date_from, date_to, type, id, country, host, event, limit"
    assert (response.status_code, response.json()) == (400, {"data": [], "errors": [
        "date_from: query param is not set", "type: must be one of vod, live, playlist",
        "limit: must be a whole number from 1 to 1000",
        f"contry: unknown query param; this endpoint takes {takes}",
        f"granularity: unknown query param; this endpoint takes {takes}"]})


@pytest.mark.parametrize(("sent", "stored"), [
    ({"country": "ZZ"}, {"country": "ZZ"}),  # answered every country's views before issue 20
    ({"id": "v-2", "country": "AU"}, {"id": "v-2", "country": "AU"}),
    ({"host": "B.Example"}, {"host": "b.example"}),  # as the collector stores hosts
    ({"country": "us", "event": "start"}, {"country": "US", "event": "start"}),
])
def test_hosts_count_only_what_the_filters_select(storage: Storage, tmp_path: Path,
                                                  sent: dict[str, str],
                                                  stored: dict[str, str]) -> None:
    got, expected = filtered_and_counted(storage, tmp_path / "keys", HOSTS, "host", sent, stored)
    assert got == expected
