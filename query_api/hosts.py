"""`GET /streaming/statistics/hosts`: views per embedding host, most first, at most `limit` rows
(as `popular` takes it; without it, up to the row cap: architecture §15); views with no
embedding site, such as the player page opened by itself, count under the host "" (where the
collector takes the host from: architecture §3)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from viewstats.core.keys import KeyStore
from viewstats.query_api import filters
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.budget import QueryBudget
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.row_cap import RowCap
from viewstats.query_api.statistics import Row, StatisticsEndpoint
from viewstats.query_api.window import Window

NARROW = "limit (the most viewed hosts first), or a shorter window (date_from, date_to)"


def _parse(request: Request, errors: list[str], client_id: int, window: Window,
           event_type: str | None) -> Breakdown:
    found, event = filters.selection(request, errors)
    # Any host can embed the player, so a tenant's hosts are as many as strangers make.
    limit = filters.limit(request, errors, default=None)
    filters.unknown(request, errors, ("limit",))
    return Breakdown(client_id, window, ("host",), event_type=event_type, event=event,
                     filters=found, by_views=True, limit=limit)


def _shape(query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
    del query
    return [{"views": views, "host": host} for host, views in rows]


def hosts_endpoint(kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                   cap: RowCap) -> StatisticsEndpoint:
    return StatisticsEndpoint(kept, keys, budget, _parse, _shape, cap, NARROW)
