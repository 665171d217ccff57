"""What every statistics endpoint shares (architecture §15): the key (§7), the window and `type`
(§6), the row cap, the error shapes (§1), and the one query path: each endpoint adds its own
parameters and row shape, and its counts come from one `Breakdown`, answered from kept buckets
where memory holds them (query_api/kept_answers.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from viewstats.core.keys import KeyStore
from viewstats.core.responses import encoded_json, error_response, internal_error
from viewstats.core.storage import QuerySettings, StorageError
from viewstats.query_api.auth import authenticate
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.budget import QueryBudget, QueryRefused
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.params import window_and_type
from viewstats.query_api.row_cap import RowCap, TooManyRows
from viewstats.query_api.window import Window

log = logging.getLogger(__name__)

UNAUTHORIZED = "authorization: a valid 'apikey <token>' is required"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "apikey"}

# (request, errors, client_id, window, type) -> the breakdown, with any problem in errors
Parse = Callable[[Request, list[str], int, Window, str | None], Breakdown]
Row = tuple[str | int, ...]
Shape = Callable[[Breakdown, list[Row]], list[dict[str, Any]]]


async def respond(body: Awaitable[bytes], what: str, client_id: int) -> Response:
    """The answer whose JSON `body` gives, or its refusal in the error shape: past the client's
    budget or an engine limit (429, 503), past the row cap (422), or a failure (500, logged
    with `what` was asked)."""
    try:
        encoded = await body
    except QueryRefused as refused:
        return refused.response()
    except TooManyRows as exc:
        return error_response(422, [str(exc)])
    except Exception:
        log.exception("%s query failed for client %s", what, client_id)
        return internal_error()
    return encoded_json(encoded)


class StatisticsEndpoint:
    """`narrow` completes the 422 of an answer past the cap: how to ask this endpoint for
    fewer rows."""

    def __init__(self, kept: KeptAnswers, keys: KeyStore, budget: QueryBudget, parse: Parse,
                 shape: Shape, cap: RowCap, narrow: str) -> None:
        self._kept = kept
        self._keys = keys
        self._budget = budget
        self._parse = parse
        self._shape = shape
        self._cap = cap
        self._narrow = narrow

    async def get(self, request: Request) -> Response:
        client_id = authenticate(request, self._keys)
        if client_id is None:
            return error_response(401, [UNAUTHORIZED], UNAUTHORIZED_HEADERS)
        errors: list[str] = []
        window, event_type = window_and_type(request, errors)
        # Parsed even without a window, so that one 400 names every bad parameter.
        query = self._parse(request, errors, client_id, window or Window(0, 0), event_type)
        if errors:
            return error_response(400, errors)
        settings = self._cap.engine_settings(query.limit)
        query = replace(query, limit=self._cap.engine_limit(query.limit))
        return await respond(self._body(query, settings), request.url.path, client_id)

    async def _body(self, query: Breakdown, settings: QuerySettings) -> bytes:
        # No turn of the client's budget when memory holds the answer, and no thread hop
        # either when it is one row per key (a millisecond or two to sum); one row per day and
        # key may be tens of thousands, which would hold up the beacons the event loop takes.
        if query.bucket is None:
            kept = self._kept.rows_in_memory(query)
        else:
            kept = await run_in_threadpool(self._kept.rows_in_memory, query)
        if kept is not None:
            return self._encoded(query, kept)
        return await self._budget.run(query.client_id, self._answer, query, settings)

    def _answer(self, query: Breakdown, settings: QuerySettings) -> bytes:
        """The answer's JSON, made in a worker thread: the engine's part, shaping and encoding
        a large answer on the event loop would hold up every beacon it takes."""
        try:
            rows = self._kept.rows(query, settings)
        except StorageError as exc:
            if (refused := self._cap.overflowed(exc, self._narrow)) is not None:
                raise refused from exc
            raise
        return self._encoded(query, rows)

    def _encoded(self, query: Breakdown, rows: list[Row]) -> bytes:
        self._cap.check(rows, self._narrow)
        return orjson.dumps({"data": self._shape(query, rows)})
