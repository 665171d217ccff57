"""`GET /streaming/statistics/views`: views per UTC day (or hour) and type, filtered by `id`,
`country`, `host` and `event`, and split by any of the `group` fields (architecture §15).

Rows are sorted by date, then type, then the group fields in the order host, country, event,
id; a group field appears in each row under its own name.
"""

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

NARROW = ("a shorter window (date_from, date_to), granularity=1d, fewer group fields, or a "
          "filter (id, country, host, event, type)")


def _parse(request: Request, errors: list[str], client_id: int, window: Window,
           event_type: str | None) -> Breakdown:
    found, event = filters.selection(request, errors)
    group = filters.group(request, errors)
    bucket = filters.granularity(request, errors)
    filters.unknown(request, errors, ("group", "granularity"))
    return Breakdown(client_id, window, ("type", *group), bucket, event_type, event, found)


def _shape(query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
    names = ("date", *query.keys)
    return [{"views": row[-1], **dict(zip(names, row[:-1], strict=True))} for row in rows]


def views_endpoint(kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                   cap: RowCap) -> StatisticsEndpoint:
    return StatisticsEndpoint(kept, keys, budget, _parse, _shape, cap, NARROW)
