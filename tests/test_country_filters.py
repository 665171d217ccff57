"""The countries breakdown with the filters every statistics endpoint takes (`id`, `country`,
`host` and `event` are extensions on countries) equals a brute-force count for any window,
filters and event, answered by the one query path with its buckets loaded before every answer
(so memory answers what it holds); the endpoint's answers with them equal the counts of
`player_events` itself; `filters.selection` and `filters.unknown` read and check them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from tests.support.api import COUNTRIES
from tests.support.breakdowns import (
    brute_force,
    counted_events,
    filter_values,
    filtered_and_counted,
    rich_events,
    store_only,
)
from tests.support.database import fresh_client_id
from tests.support.windows import draw_window
from viewstats.core.storage import Storage
from viewstats.query_api import filters as parse
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.window import parse_window

pytestmark = pytest.mark.chdb
CLIENTS = [fresh_client_id() for _ in range(3)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, filters=filter_values, event=counted_events, data=st.data())
def test_filtered_countries_match_brute_force(
        storage: Storage, generated: list[tuple[tuple[int, int, str, str, str], str, str]],
        filters: dict[str, str], event: str | None, data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    rows = store_only(storage, CLIENTS, generated)
    parsed = parse_window(window.params["date_from"], window.params["date_to"])
    kept = KeptAnswers(storage, 300, 1 << 26, background=False)
    found = {name: value for name, value in filters.items() if name != "type"}
    for client_id in CLIENTS:
        got = kept.rows(Breakdown(client_id, parsed, ("country",), event_type=filters.get("type"),
                                  event=event, filters=found, by_views=True))
        counts = brute_force(rows, client_id, window, keys=("country",), filters=filters,
                             event=event)
        assert got == sorted(((c, n) for (c,), n in counts.items()),
                             key=lambda cn: (-cn[1], cn[0])), (window.params, filters, event)


@pytest.mark.parametrize(("sent", "stored"), [
    ({"country": "zz"}, {"country": "ZZ"}),
    ({"event": "start"}, {"event": "start"}),  # from the rollup of every event
    ({"event": "watch", "host": "example.com"}, {"host": "example.com"}),
    ({"id": "v-1", "country": "US", "event": "start"},
     {"id": "v-1", "country": "US", "event": "start"}),
])
def test_countries_count_only_what_the_filters_select(storage: Storage, tmp_path: Path,
                                                      sent: dict[str, str],
                                                      stored: dict[str, str]) -> None:
    got, expected = filtered_and_counted(storage, tmp_path / "keys", COUNTRIES, "country", sent,
                                         stored)
    assert got == expected


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                    "query_string": query.encode()})


TAKES = "date_from, date_to, type, id, country, host, event"


@pytest.mark.parametrize(("query", "found", "errors"), [
    ("", ({}, None), []),
    ("id=v-1&host=Example.COM&country=au&event=init",
     ({"id": "v-1", "host": "example.com", "country": "AU"}, "init"), []),
    ("id=v-1&id=v-2", ({}, None), ["id: query param is set more than once"]),
    ("host=" + "h" * 254, ({}, None), ["host: at most 253 characters"]),
    ("id=", ({}, None), ["id: query param is empty"]),
    ("event=play&limit=5&date_from=x", ({}, None), [
        "event: must be one of init, start, watch",
        f"limit: unknown query param; this endpoint takes {TAKES}"]),
    ("x" * 70 + "=1", ({}, None), [f"{'x' * 64}: unknown query param; this endpoint takes "
                                   f"{TAKES}"]),
])
def test_filters_are_read_and_checked(query: str, found: tuple[dict[str, str], str | None],
                                      errors: list[str]) -> None:
    problems: list[str] = []
    assert parse.selection(_request(query), problems) == found
    parse.unknown(_request(query), problems)
    assert problems == errors
