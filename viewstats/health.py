"""`/healthz` (the process answers) and `/readyz` (what it depends on answers too)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from viewstats.core.responses import json_response
from viewstats.core.storage import Storage

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 2.0


def database_check(storage: Storage) -> Check:
    """The database answers, and this process's writes are not failing."""
    async def check() -> None:
        await run_in_threadpool(storage.query, "SELECT 1")
        storage.health.check()
    return check


async def _healthz(_: Request) -> Response:
    return json_response({"status": "ok"})


def health_routes(checks: Mapping[str, Check]) -> list[BaseRoute]:
    async def readyz(_: Request) -> Response:
        failing = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            except Exception as exc:
                log.warning("readiness check %s failed: %r", name, exc)
                failing[name] = type(exc).__name__
        if failing:
            return json_response({"status": "unavailable", "failing": failing}, 503)
        return json_response({"status": "ready", "checks": sorted(checks)})

    return [Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"])]
