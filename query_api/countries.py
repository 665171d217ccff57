"""`GET /streaming/statistics/countries`: views by country for the caller's client, most first,
filtered as every statistics endpoint is (`id`, `country`, `host` and `event` are extensions
here: architecture §15)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from viewstats.core.keys import KeyStore
from viewstats.query_api import filters
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.budget import QueryBudget
from viewstats.query_api.country_names import country_name
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.row_cap import RowCap
from viewstats.query_api.statistics import Row, StatisticsEndpoint
from viewstats.query_api.window import Window

# Countries are a few hundred at most, so the cap only matters when set that low.
NARROW = "a shorter window (date_from, date_to), or the id or host filter"


def _parse(request: Request, errors: list[str], client_id: int, window: Window,
           event_type: str | None) -> Breakdown:
    found, event = filters.selection(request, errors)
    filters.unknown(request, errors)
    return Breakdown(client_id, window, ("country",), event_type=event_type, event=event,
                     filters=found, by_views=True)


def _shape(query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
    del query
    return [{"views": views, "country": country, "country_name": country_name(str(country))}
            for country, views in rows]


def countries_endpoint(kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                       cap: RowCap) -> StatisticsEndpoint:
    return StatisticsEndpoint(kept, keys, budget, _parse, _shape, cap, NARROW)
