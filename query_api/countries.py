"""`GET /streaming/statistics/countries`: views by country for the caller's client."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from viewstats.core.keys import KeyStore
from viewstats.core.responses import error_response
from viewstats.core.storage import Storage
from viewstats.query_api.auth import authenticate
from viewstats.query_api.budget import QueryBudget
from viewstats.query_api.country_filters import country_filters, filtered_countries
from viewstats.query_api.country_names import country_name
from viewstats.query_api.country_totals import CountryTotals, Rows
from viewstats.query_api.params import window_and_type
from viewstats.query_api.row_cap import RowCap
from viewstats.query_api.statistics import UNAUTHORIZED, UNAUTHORIZED_HEADERS, respond
from viewstats.query_api.window import Window

# Countries are a few hundred at most, so the cap only matters when set that low.
NARROW = "a shorter window (date_from, date_to), or the id or host filter"


class CountriesEndpoint:
    """Without `id` or `host` the answer comes from CountryTotals (sealed buckets and the
    country rollups); with either, from the family's breakdown over the video or host rollups."""

    def __init__(self, storage: Storage, keys: KeyStore, totals: CountryTotals,
                 budget: QueryBudget, cap: RowCap) -> None:
        self._storage = storage
        self._keys = keys
        self._totals = totals
        self._budget = budget
        self._cap = cap

    async def get(self, request: Request) -> Response:
        client_id = authenticate(request, self._keys)
        if client_id is None:
            return error_response(401, [UNAUTHORIZED], UNAUTHORIZED_HEADERS)
        errors: list[str] = []
        window, event_type = window_and_type(request, errors)
        video_id, host = country_filters(request, errors)
        if errors or window is None:
            return error_response(400, errors)
        return await respond(self._body(client_id, window, event_type, video_id, host),
                             "countries", client_id)

    async def _body(self, client_id: int, window: Window, event_type: str | None,
                    video_id: str | None, host: str | None) -> bytes:
        # No thread hop, and no turn of the client's budget, when memory holds the answer (a
        # few hundred rows to encode).
        kept = (self._totals.rows_in_memory(client_id, event_type, window)
                if video_id is None and host is None else None)
        if kept is not None:
            return self._encoded(kept)
        return await self._budget.run(client_id, self._from_engine, client_id, window,
                                      event_type, video_id, host)

    def _from_engine(self, client_id: int, window: Window, event_type: str | None,
                     video_id: str | None, host: str | None) -> bytes:
        """The answer's JSON, in a worker thread: the engine query, the shape and the encoding
        all stay off the event loop that takes beacons."""
        if video_id is not None or host is not None:
            rows = filtered_countries(self._storage, client_id, window, event_type, video_id,
                                      host, self._cap.engine_limit(None))
        else:
            rows = self._totals.rows(client_id, event_type, window)
        return self._encoded(rows)

    def _encoded(self, rows: Rows) -> bytes:
        self._cap.check(rows, NARROW)
        return orjson.dumps({"data": [
            {"views": views, "country": country, "country_name": country_name(country)}
            for country, views in rows]})
