"""The query service's routes and a standalone app (`viewstats api`)."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from viewstats.core import regions
from viewstats.core.keys import KeyStore
from viewstats.core.responses import error_response, internal_error, json_response
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage
from viewstats.query_api.audience import BROWSERS, EMBEDS, REGIONS, SYSTEMS
from viewstats.query_api.budget import QueryBudget
from viewstats.query_api.countries import countries_endpoint
from viewstats.query_api.dashboard import dashboard_routes
from viewstats.query_api.hosts import HOSTS
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.openapi import OPENAPI
from viewstats.query_api.popular import POPULAR
from viewstats.query_api.row_cap import RowCap
from viewstats.query_api.uniqs import uniqs_endpoint
from viewstats.query_api.views import views_endpoint

log = logging.getLogger(__name__)


async def _openapi(_: Request) -> Response:
    return json_response(OPENAPI)


def query_routes(storage: Storage, keys: KeyStore, dashboard_assets: Path | None = None,
                 settings: Settings | None = None) -> list[BaseRoute]:
    """The statistics endpoints, and the dashboard at `/` when given its npm assets' folder;
    `settings` sizes the sealed buckets, each client's query budget and the row cap (defaults
    when None)."""
    settings = settings or Settings()
    regions.preload()
    budget = QueryBudget.from_settings(settings)
    # Queries made inside `budget.run` carry its limits; the bucket filler's carry none.
    storage = budget.limited(storage)
    kept = KeptAnswers(storage, settings.sealed_after_s, settings.sealed_max_mb << 20)
    cap = RowCap(settings.query_max_rows)
    endpoints = {"countries": countries_endpoint, "views": views_endpoint,
                 "hosts": HOSTS.endpoint, "popular": POPULAR.endpoint, "uniqs": uniqs_endpoint,
                 "browsers": BROWSERS.endpoint, "systems": SYSTEMS.endpoint,
                 "regions": REGIONS.endpoint, "embeds": EMBEDS.endpoint}
    return [*([] if dashboard_assets is None else dashboard_routes(dashboard_assets)),
        *(Route(f"/streaming/statistics/{name}", endpoint(kept, keys, budget, cap).get,
                methods=["GET"]) for name, endpoint in endpoints.items()),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ]


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, [str(exc.detail)], exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error()


# Every error leaves in Gcore's error shape: plain-text 404/405/500 would break clients.
EXCEPTION_HANDLERS = {HTTPException: _http_error, Exception: _unhandled}
