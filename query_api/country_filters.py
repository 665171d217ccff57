"""The countries endpoint's `id` and `host` filters (an extension, architecture §15): the
countries of one video's or one host's views, through the same breakdown as the family.
`CountriesEndpoint` calls these when either filter is set."""

from __future__ import annotations

from starlette.requests import Request

from viewstats.core.storage import Storage
from viewstats.query_api import filters
from viewstats.query_api.breakdown import Breakdown, run_breakdown
from viewstats.query_api.window import Window


def country_filters(request: Request, errors: list[str]) -> tuple[str | None, str | None]:
    """(video id, host) the request filters by, each None when unset; problems go to errors."""
    found = filters.filters(request, errors, ("id", "host"))
    return found.get("id"), found.get("host")


def filtered_countries(storage: Storage, client_id: int, window: Window,
                       event_type: str | None, video_id: str | None, host: str | None,
                       limit: int | None = None) -> list[tuple[str, int]]:
    """(country, views) sorted by views descending, then country, exactly for the window; at
    most `limit` rows. Blocks on the engine: call it from a worker thread."""
    found = {name: value for name, value in (("id", video_id), ("host", host))
             if value is not None}
    query = Breakdown(client_id, window, ("country",), event_type=event_type, filters=found,
                      by_views=True, limit=limit)
    rows = run_breakdown(storage, query)
    return [(str(country), int(views)) for country, views in rows]
