"""`GET /streaming/statistics/countries`: views by country for the caller's client."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from viewstats.core.keys import KeyStore
from viewstats.core.responses import error_response, internal_error, json_response
from viewstats.core.storage import Storage
from viewstats.query_api.auth import authenticate
from viewstats.query_api.budget import QueryBudget, QueryRefused
from viewstats.query_api.country_filters import country_filters, filtered_countries
from viewstats.query_api.country_names import country_name
from viewstats.query_api.country_totals import CountryTotals
from viewstats.query_api.params import window_and_type
from viewstats.query_api.statistics import UNAUTHORIZED, UNAUTHORIZED_HEADERS

log = logging.getLogger(__name__)

class CountriesEndpoint:
    """Without `id` or `host` the answer comes from CountryTotals (sealed buckets and the
    country rollups); with either, from the family's breakdown over the video or host rollups."""

    def __init__(self, storage: Storage, keys: KeyStore, totals: CountryTotals,
                 budget: QueryBudget) -> None:
        self._storage = storage
        self._keys = keys
        self._totals = totals
        self._budget = budget

    async def get(self, request: Request) -> Response:
        client_id = authenticate(request, self._keys)
        if client_id is None:
            return error_response(401, [UNAUTHORIZED], UNAUTHORIZED_HEADERS)
        errors: list[str] = []
        window, event_type = window_and_type(request, errors)
        video_id, host = country_filters(request, errors)
        if errors or window is None:
            return error_response(400, errors)
        try:
            if video_id is not None or host is not None:
                rows = await filtered_countries(self._storage, self._budget, client_id, window,
                                                event_type, video_id, host)
            else:
                # No thread hop, and no turn of the client's budget, when memory holds the
                # answer.
                kept = self._totals.rows_in_memory(client_id, event_type, window)
                rows = kept if kept is not None else await self._budget.run(
                    client_id, self._totals.rows, client_id, event_type, window)
        except QueryRefused as refused:
            return refused.response()
        except Exception:
            log.exception("countries query failed for client %s", client_id)
            return internal_error()
        return json_response({"data": [
            {"views": views, "country": country, "country_name": country_name(country)}
            for country, views in rows]})
