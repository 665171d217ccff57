"""`/streaming/statistics/hosts` equals a brute-force count for any window and type, most
viewed first, with views from no host under ""; keys keep clients apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import query_client
from tests.support.breakdowns import brute_force, rich_events, store_only, three_clients
from tests.support.windows import draw_window
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

HOSTS = "/streaming/statistics/hosts"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, type_filter=st.sampled_from([None, "vod", "live"]),
       data=st.data())
def test_hosts_match_brute_force(storage: Storage,
                                 keyed_clients: tuple[dict[int, dict[str, str]], Path],
                                 generated: list[tuple[tuple[int, int, str, str, str], str, str]],
                                 type_filter: str | None, data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store_only(storage, clients, generated)
    params = dict(window.params, **({"type": type_filter} if type_filter else {}))
    client = query_client(storage, keys)
    for client_id in clients:
        response = client.get(HOSTS, params=params, headers=headers[client_id])
        assert response.status_code == 200, response.text
        counts = brute_force(rows, client_id, window, keys=("host",),
                             filters={"type": type_filter} if type_filter else {})
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        expected = [{"views": n, "host": host} for (host,), n in ranked]
        assert response.json() == {"data": expected}, (params, client_id)


def test_bad_parameters_are_a_400(storage: Storage, tmp_path: Path) -> None:
    headers = three_clients(tmp_path / "keys")
    response = query_client(storage, tmp_path / "keys").get(
        HOSTS, params={"date_to": "2024-02-27", "type": "film"},
        headers=next(iter(headers.values())))
    assert (response.status_code, response.json()) == (400, {"data": [], "errors": [
        "date_from: query param is not set", "type: must be one of vod, live, playlist"]})
