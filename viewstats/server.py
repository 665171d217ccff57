"""Assemble the HTTP app a process serves from the parts its role needs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from query_api.app import EXCEPTION_HANDLERS, query_routes
from schema.migrations import migrate
from viewstats.keys import KeyStore
from viewstats.settings import Settings
from viewstats.storage import Storage, open_storage

log = logging.getLogger(__name__)


def build_app(routes: Sequence[BaseRoute]) -> Starlette:
    return Starlette(routes=list(routes),
                     exception_handlers=EXCEPTION_HANDLERS)


def serve_embedded(settings: Settings, host: str, port: int) -> None:
    """`viewstats run`: everything in one process; a fresh data dir is migrated first."""
    storage = open_storage(settings)
    try:
        for migration in migrate(storage):
            log.info("applied migration %04d_%s", migration.version, migration.name)
        _serve(build_app(query_routes(storage, KeyStore(settings.keys_path))), host, port)
    finally:
        storage.close()


def serve_api(settings: Settings, host: str, port: int) -> None:
    """`viewstats api`: the query service alone, on a database migrated by `viewstats migrate`."""
    storage: Storage = open_storage(settings)
    try:
        _serve(build_app(query_routes(storage, KeyStore(settings.keys_path))), host, port)
    finally:
        storage.close()


def _serve(app: Starlette, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
