"""Endpoints that rank one field by views, most first (architecture §15): hosts, popular, and
the audience's browsers, systems, regions and embeds (§18). Each takes the filters every
endpoint takes and `limit`, and is one `Breakdown` keyed by its field; they differ only in the
field, the name its rows give it, the default limit and what else a row says of its value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Ranked:
    field: str  # the Breakdown key (viewstats/core/rollups.py COLUMNS)
    row_name: str  # what a row calls it (Gcore's SDK parses these names)
    default_limit: int | None  # None: every value up to the row cap
    narrow: str  # how to ask for fewer rows than the cap
    # More of a row from its value, e.g. a region's name.
    more: Callable[[str], dict[str, Any]] | None = None

    def _parse(self, request: Request, errors: list[str], client_id: int, window: Window,
               event_type: str | None) -> Breakdown:
        found, event = filters.selection(request, errors)
        limit = filters.limit(request, errors, default=self.default_limit)
        filters.unknown(request, errors, ("limit",))
        return Breakdown(client_id, window, (self.field,), event_type=event_type, event=event,
                         filters=found, by_views=True, limit=limit)

    def _shape(self, query: Breakdown, rows: list[Row]) -> list[dict[str, Any]]:
        del query
        more, name = self.more, self.row_name
        if more is None:
            return [{"views": views, name: value} for value, views in rows]
        return [{"views": views, name: value, **more(str(value))} for value, views in rows]

    def endpoint(self, kept: KeptAnswers, keys: KeyStore, budget: QueryBudget,
                 cap: RowCap) -> StatisticsEndpoint:
        return StatisticsEndpoint(kept, keys, budget, self._parse, self._shape, cap,
                                  self.narrow)
