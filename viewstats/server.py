"""Assemble what each process role serves (DESIGN §2, §8).

`run` is everything in one process: collector, writer (the embedded batcher, or Kafka and a
consumer task when KAFKA_BOOTSTRAP_SERVERS is set), query API, player pages. `collector` and
`api` are the scaled-out roles. Every role's background work starts and stops in the app's
lifespan, so SIGTERM stops taking requests, then flushes and commits before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from ingest.batcher import EmbeddedBatcher
from ingest.collector import Collector
from ingest.consumer import Consumer
from ingest.geoip import CountryResolver
from ingest.kafka_sink import KafkaSink
from ingest.sink import EventSink
from query_api.app import EXCEPTION_HANDLERS, query_routes
from schema.migrations import migrate
from viewstats.health import Check, database_check, health_routes
from viewstats.keys import KeyStore
from viewstats.metrics import metrics_endpoint
from viewstats.settings import Settings
from viewstats.storage import Storage, open_storage

log = logging.getLogger(__name__)


def ops_routes(checks: dict[str, Check]) -> list[BaseRoute]:
    return [*health_routes(checks), Route("/metrics", metrics_endpoint, methods=["GET"])]


def build_app(routes: Sequence[BaseRoute], sink: EventSink | None = None,
              consumer: Consumer | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        consuming = asyncio.create_task(consumer.run()) if consumer else None
        if consuming is not None:
            consuming.add_done_callback(_report_failure)
        if sink is not None:
            await sink.start()
        try:
            yield
        finally:
            if sink is not None:
                await sink.stop()
            if consumer is not None and consuming is not None:
                await consumer.stop()
                await consuming

    return Starlette(routes=list(routes), exception_handlers=EXCEPTION_HANDLERS,
                     lifespan=lifespan)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the consumer stopped on an error; events are no longer written",
                  exc_info=exc)


def _sink(settings: Settings, storage: Storage) -> EventSink:
    if settings.kafka_bootstrap_servers:
        return KafkaSink(settings.kafka_bootstrap_servers, settings.kafka_topic)
    return EmbeddedBatcher(storage)


def _collector(settings: Settings, sink: EventSink) -> Collector:
    return Collector(sink, CountryResolver(settings.geoip_path), settings.trusted_proxies)


def serve_embedded(settings: Settings, host: str, port: int) -> None:
    """`viewstats run`: everything in one process; a fresh data dir is migrated first."""
    storage = open_storage(settings)
    try:
        for migration in migrate(storage):
            log.info("applied migration %04d_%s", migration.version, migration.name)
        sink = _sink(settings, storage)
        consumer = Consumer(storage, settings.kafka_bootstrap_servers,
                            topic=settings.kafka_topic, group_id=settings.consumer_group
                            ) if settings.kafka_bootstrap_servers else None
        routes = [*_collector(settings, sink).routes(),
                  *query_routes(storage, KeyStore(settings.keys_path)),
                  *ops_routes({"database": database_check(storage)})]
        _serve(build_app(routes, sink, consumer), host, port)
    finally:
        storage.close()


def serve_collector(settings: Settings, host: str, port: int) -> None:
    """`viewstats collector`: beacons to Kafka, or straight into the database without it."""
    storage = open_storage(settings)
    try:
        sink = _sink(settings, storage)
        routes = [*_collector(settings, sink).routes(),
                  *ops_routes({"database": database_check(storage)})]
        _serve(build_app(routes, sink), host, port)
    finally:
        storage.close()


def serve_api(settings: Settings, host: str, port: int) -> None:
    """`viewstats api`: the query service alone, on a database migrated by `viewstats migrate`."""
    storage = open_storage(settings)
    try:
        routes = [*query_routes(storage, KeyStore(settings.keys_path)),
                  *ops_routes({"database": database_check(storage)})]
        _serve(build_app(routes), host, port)
    finally:
        storage.close()


def _serve(app: Starlette, host: str, port: int) -> None:
    # X-Forwarded-For is the collector's to interpret (TRUSTED_PROXIES), not uvicorn's.
    # log_config=None keeps the JSON logging the CLI set up.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                proxy_headers=False, log_config=None)
