"""`GET /streaming/statistics/countries`: views by country for the caller's client."""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from viewstats.core.keys import KeyStore
from viewstats.core.metrics import QUERY_ANSWERS, QUERY_SECONDS
from viewstats.core.responses import error_response, internal_error, json_response
from viewstats.core.storage import Storage
from viewstats.query_api.auth import authenticate
from viewstats.query_api.cache import AnswerCache, Key
from viewstats.query_api.country_names import country_name
from viewstats.query_api.params import window_and_type
from viewstats.query_api.plan import countries_query, plan_window

log = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "apikey"}


class CountriesEndpoint:
    def __init__(self, storage: Storage, keys: KeyStore) -> None:
        self._storage = storage
        self._keys = keys
        cache = AnswerCache()
        self._cache = cache if storage.watch_writes(cache.on_write) else None

    async def get(self, request: Request) -> Response:
        started = time.perf_counter()
        response = await self._answer(request)
        QUERY_SECONDS.labels(str(response.status_code)).observe(time.perf_counter() - started)
        return response

    async def _answer(self, request: Request) -> Response:
        client_id = authenticate(request, self._keys)
        if client_id is None:
            return error_response(401, ["authorization: a valid 'apikey <token>' is required"],
                                  _UNAUTHORIZED_HEADERS)
        errors: list[str] = []
        window, event_type = window_and_type(request, errors)
        if errors or window is None:
            return error_response(400, errors)
        key = Key(client_id, event_type, window.start_ms, window.end_ms)
        rows = self._cache.get(key) if self._cache is not None else None
        if rows is None:
            token = self._cache.begin() if self._cache is not None else 0
            query = countries_query(plan_window(window), client_id, event_type)
            try:
                result = [] if query is None else await run_in_threadpool(
                    self._storage.query, *query)
            except Exception:
                log.exception("countries query failed for client %s", client_id)
                return internal_error()
            rows = [(str(country), int(views)) for country, views in result]
            if self._cache is not None:
                self._cache.store(key, rows, token)
            QUERY_ANSWERS.labels("database").inc()
        else:
            QUERY_ANSWERS.labels("cache").inc()
        return json_response({"data": [
            {"views": views, "country": country, "country_name": country_name(country)}
            for country, views in rows]})
