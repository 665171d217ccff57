"""`GET /streaming/statistics/popular`: views per video id, most viewed first, at most `limit`
rows (default 100, at most 1000; architecture §15), and never more than the row cap."""

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

NARROW = "a smaller limit"


def _parse(request: Request, errors: list[str], client_id: int, window: Window,
           event_type: str | None) -> Breakdown:
    found, event = filters.selection(request, errors)
    limit = filters.limit(request, errors)
    filters.unknown(request, errors, ("limit",))
    return Breakdown(client_id, window, ("id",), event_type=event_type, event=event,
                     filters=found, by_views=True, limit=limit)


def _shape(query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
    del query
    return [{"views": views, "id": video_id} for video_id, views in rows]


def popular_endpoint(kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                     cap: RowCap) -> StatisticsEndpoint:
    return StatisticsEndpoint(kept, keys, budget, _parse, _shape, cap, NARROW)
