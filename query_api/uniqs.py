"""`GET /streaming/statistics/uniqs`: unique viewers (architecture §18), exactly: the number of
distinct viewer keys (a keyed hash of the viewer's IP, ingest/collector/viewer_key.py) among
the events counted. Every event counts unless `event` names one; the filters and `group` fields
are those of views, plus `date`.

A row's `date` is its UTC day with `group=date`; without it, the rows count the whole window
and `date` is the window's first UTC day (Gcore's SDK requires the field). Each row counts each
viewer once, however many days or events it had; a viewer in two rows counts in both. Events
stored before viewers were keyed (schema/0011) are left out.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from viewstats.core.keys import KeyStore
from viewstats.query_api import filters
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.budget import QueryBudget
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.plan import sql_date
from viewstats.query_api.row_cap import RowCap
from viewstats.query_api.statistics import Row, StatisticsEndpoint
from viewstats.query_api.window import Window

NARROW = "a shorter window (date_from, date_to), fewer group fields, or a filter"
GROUPS = ("date", *filters.GROUP_FIELDS)


def _parse(request: Request, errors: list[str], client_id: int, window: Window,
           event_type: str | None) -> Breakdown:
    found, event = filters.selection(request, errors)
    group = filters.group(request, errors, GROUPS)
    filters.unknown(request, errors, ("group",))
    keys = tuple(name for name in group if name != "date")
    return Breakdown(client_id, window, keys, "day" if "date" in group else None, event_type,
                     event, found, distinct=True)


def _shape(query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
    if query.bucket is not None:
        names: tuple[str, ...] = ("date", *query.keys)
        return [{"unique_ips": row[-1], **dict(zip(names, row[:-1], strict=True))}
                for row in rows]
    first_day = sql_date(query.window.start_ms)
    if not query.keys and not rows:  # a window too short to hold a millisecond reads nothing
        return [{"unique_ips": 0, "date": first_day}]
    return [{"unique_ips": row[-1], "date": first_day,
             **dict(zip(query.keys, row[:-1], strict=True))} for row in rows]


def uniqs_endpoint(kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                   cap: RowCap) -> StatisticsEndpoint:
    return StatisticsEndpoint(kept, keys, budget, _parse, _shape, cap, NARROW)
