"""The countries breakdown with the `id` and `host` filters equals a brute-force count for any
window and filters, answered by the one query path with its buckets loaded before every answer
(so memory answers what it holds); `country_filters` reads and checks the filters."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from tests.support.breakdowns import HOSTS, VIDEOS, brute_force, rich_events, store_only
from tests.support.database import fresh_client_id
from tests.support.windows import draw_window
from viewstats.core.storage import Storage
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.country_filters import country_filters
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.window import parse_window

pytestmark = pytest.mark.chdb
CLIENTS = [fresh_client_id() for _ in range(3)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rich_events, video=st.sampled_from([None, *VIDEOS]),
       host=st.sampled_from([None, *HOSTS]), type_filter=st.sampled_from([None, "vod"]),
       data=st.data())
def test_filtered_countries_match_brute_force(
        storage: Storage, generated: list[tuple[tuple[int, int, str, str, str], str, str]],
        video: str | None, host: str | None, type_filter: str | None,
        data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    rows = store_only(storage, CLIENTS, generated)
    parsed = parse_window(window.params["date_from"], window.params["date_to"])
    filters = {name: value for name, value in (("id", video), ("host", host), ("type", type_filter))
               if value is not None}
    kept = KeptAnswers(storage, 300, 1 << 26, background=False)
    found = {name: value for name, value in (("id", video), ("host", host)) if value is not None}
    for client_id in CLIENTS:
        got = kept.rows(Breakdown(client_id, parsed, ("country",), event_type=type_filter,
                                  filters=found, by_views=True))
        counts = brute_force(rows, client_id, window, keys=("country",), filters=filters)
        assert got == sorted(((c, n) for (c,), n in counts.items()),
                             key=lambda cn: (-cn[1], cn[0])), (window.params, filters)


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                    "query_string": query.encode()})


@pytest.mark.parametrize(("query", "found", "errors"), [
    ("", (None, None), []),
    ("id=v-1&host=example.com", ("v-1", "example.com"), []),
    ("id=v-1&id=v-2", (None, None), ["id: query param is set more than once"]),
    ("host=" + "h" * 254, (None, None), ["host: at most 253 characters"]),
    ("id=", (None, None), ["id: query param is empty"]),
])
def test_country_filters_are_read_and_checked(query: str, found: tuple[str | None, str | None],
                                              errors: list[str]) -> None:
    problems: list[str] = []
    assert country_filters(_request(query), problems) == found
    assert problems == errors
