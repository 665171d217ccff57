"""Assemble what each process role serves (architecture §2, §8).

`run` is everything in one process: collector, writer (the embedded batcher, or Kafka and a
consumer task when KAFKA_BOOTSTRAP_SERVERS is set), query API, player pages. `collector`,
`consumer` and `api` are the scaled-out roles; each serves /healthz, /readyz and /metrics.
Every role's background work starts and stops in the app's lifespan, so SIGTERM stops taking
requests, then flushes and commits before the process exits. With `--workers N`
(viewstats.workers) each worker process assembles its role here on its slot's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator, Sequence

import uvicorn
from aiokafka.errors import KafkaConnectionError
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from viewstats import http_layers, workers
from viewstats.core import regions
from viewstats.core.keys import KeyStore
from viewstats.core.metrics import metrics_endpoint
from viewstats.core.settings import Settings, SettingsError
from viewstats.core.storage import Storage, open_storage
from viewstats.health import Check, database_check, health_routes
from viewstats.http_limits import HttpLimits, protocol_with
from viewstats.ingest.collector.embedded_sink import EmbeddedSink
from viewstats.ingest.collector.endpoint import Collector
from viewstats.ingest.collector.geoip import CountryResolver
from viewstats.ingest.collector.kafka_sink import KafkaSink
from viewstats.ingest.collector.sink import EventSink
from viewstats.ingest.collector.viewer_key import ViewerKeys, create_secret_file
from viewstats.ingest.consumer.kafka_consumer import Consumer
from viewstats.ingest.topic import dead_letter_topic, ensure_topic
from viewstats.player.routes import media_routes, player_routes
from viewstats.query_api.app import EXCEPTION_HANDLERS, query_routes
from viewstats.schema.migrations import Migration, migrate

log = logging.getLogger(__name__)


def ops_routes(checks: dict[str, Check]) -> list[BaseRoute]:
    metrics = workers.all_workers_metrics if workers.metrics_in_files() else metrics_endpoint
    return [*health_routes(checks), Route("/metrics", metrics, methods=["GET"])]


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
            # Side by side: each gives up on an absent broker after its own timeout, and one
            # after the other they would outlast the 30 s a supervisor allows a stop. A sink
            # that fails to flush must not leave the consumer uncommitted either.
            stops = [sink.stop()] if sink is not None else []
            if consumer is not None and consuming is not None:
                stops.append(_stopped(consumer, consuming))
            failures = [r for r in await asyncio.gather(*stops, return_exceptions=True)
                        if isinstance(r, BaseException)]
            if failures:
                raise failures[0]

    app = _App(routes=list(routes), exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    # Starlette would answer /events/ with a 307 to the URL with the slash removed, taking the
    # scheme and host from the request's Host header: a redirect anyone can aim anywhere (and a
    # 307 keeps a POST's method and body). No path of the platform ends with a slash, so such a
    # path is a 404 in the JSON error shape, as any unknown path is.
    app.router.redirect_slashes = False
    return app


class _App(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's error middleware, so that a 500 gets its request id and is timed.
        return http_layers.wrapped(super().build_middleware_stack())


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        # A process that no longer writes must not look alive: shut down (as on SIGTERM), and
        # the lifespan's shutdown re-raises the error, so the process exits 1 (_serve) for the
        # orchestrator or the workers' supervisor to start it again.
        log.error("the consumer stopped on an error; shutting down", exc_info=exc)
        os.kill(os.getpid(), signal.SIGTERM)


def _ensure_topics(bootstrap: str, settings: Settings) -> None:
    """The events topic and its dead-letter topic exist, with the configured partitions."""
    try:
        for topic in (settings.kafka_topic, dead_letter_topic(settings.kafka_topic)):
            asyncio.run(ensure_topic(bootstrap, topic, settings.kafka_topic_partitions))
    except KafkaConnectionError as exc:
        # The environment's fault, as an unreachable CLICKHOUSE_URL is: one line and exit 2
        # (viewstats.cli), not aiokafka's traceback.
        raise SettingsError(f"KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka at {bootstrap}: "
                            f"{exc}") from exc


def _sink(settings: Settings, storage: Storage) -> EventSink:
    if settings.kafka_bootstrap_servers:
        _ensure_topics(settings.kafka_bootstrap_servers, settings)
        return KafkaSink(settings.kafka_bootstrap_servers, settings.kafka_topic,
                         timeout_s=settings.kafka_produce_timeout_s)
    return EmbeddedSink(storage, linger_s=settings.embedded_linger_ms / 1000,
                        dedup_horizon_s=settings.dedup_horizon_s)


def _consumer(settings: Settings, storage: Storage) -> Consumer | None:
    if not settings.kafka_bootstrap_servers:
        return None
    _ensure_topics(settings.kafka_bootstrap_servers, settings)
    return Consumer(storage, settings.kafka_bootstrap_servers, topic=settings.kafka_topic,
                    group_id=settings.consumer_group, dedup_horizon_s=settings.dedup_horizon_s)


def _checks(storage: Storage, kafka: KafkaSink | Consumer | None = None) -> dict[str, Check]:
    checks = {"database": database_check(storage)}
    if kafka is not None:
        checks["kafka"] = kafka.check
    if isinstance(kafka, Consumer):
        # In `run` too: one process is the whole platform, and while its consumer is stalled
        # the views it acknowledges are not counted (architecture §5).
        checks["consumer"] = kafka.check_progress
    return checks


async def _stopped(consumer: Consumer, consuming: asyncio.Task[None]) -> None:
    await consumer.stop()
    await consuming


def _collector(settings: Settings, sink: EventSink) -> Collector:
    regions.preload()
    # Read at start: a missing, open or malformed secret stops the process here.
    return Collector(sink, CountryResolver(settings.geoip_path), settings.trusted_proxies,
                     viewer_keys=viewer_keys(settings))


def viewer_keys(settings: Settings) -> ViewerKeys:
    """The secret viewer keys are hashed with, read from VIEWER_KEY_FILE.

    On the embedded database (no Kafka, no ClickHouse server) the process owns its data dir and
    is the only collector, so a missing file is made (mode 0600) at its first start. Otherwise
    other collectors must hash with the same secret, which this one cannot make for them: a
    missing file is an error that says how to provision one.
    """
    path = settings.viewer_key_path
    if not (settings.clickhouse_url or settings.kafka_bootstrap_servers) \
            and create_secret_file(path):
        log.info("made the viewer key file %s", path)
    return ViewerKeys.from_file(path)


def migrate_database(settings: Settings) -> None:
    """Apply pending migrations, logging each: `run` does so before it serves."""
    storage = open_storage(settings)
    try:
        _migrate(storage)
    finally:
        storage.close()


def _migrate(storage: Storage) -> None:
    migrate(storage, _log_migration)


def _log_migration(migration: Migration, seconds: float | None) -> None:
    if seconds is None:
        log.info("applying migration %04d_%s", migration.version, migration.name)
    else:
        log.info("applied migration %04d_%s in %.1f s", migration.version, migration.name,
                 seconds)


def serve_embedded(settings: Settings, host: str, port: int,
                   sock: socket.socket | None = None) -> int:
    """`viewstats run`: everything in one process; a fresh data dir is migrated first (by the
    supervisor when there are several workers, so that they do not race to)."""
    storage = open_storage(settings)
    try:
        _migrate(storage)
        sink, consumer = _sink(settings, storage), _consumer(settings, storage)
        routes = [*_collector(settings, sink).routes(),
                  *query_routes(storage, KeyStore(settings.keys_path),
                                settings.dashboard_assets_path, settings),
                  *player_routes(settings.player_assets_path),
                  *media_routes(settings.data_dir / "media"),
                  *ops_routes(_checks(storage, consumer))]
        return _serve(build_app(routes, sink, consumer), settings, host, port, sock)
    finally:
        storage.close()


def serve_collector(settings: Settings, host: str, port: int,
                    sock: socket.socket | None = None) -> int:
    """`viewstats collector`: beacons to Kafka, or straight into the database without it."""
    storage = open_storage(settings)
    try:
        sink = _sink(settings, storage)
        routes = [*_collector(settings, sink).routes(),
                  *ops_routes(_checks(storage, sink if isinstance(sink, KafkaSink) else None))]
        return _serve(build_app(routes, sink), settings, host, port, sock)
    finally:
        storage.close()


def serve_consumer(settings: Settings, host: str, port: int,
                   sock: socket.socket | None = None) -> int:
    """`viewstats consumer`: Kafka into the database, exactly once, with ops endpoints."""
    if not settings.kafka_bootstrap_servers:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS: must be set for the consumer")
    storage = open_storage(settings)
    try:
        migrate(storage)  # a fresh data dir just works
        consumer = _consumer(settings, storage)
        return _serve(build_app(ops_routes(_checks(storage, consumer)), consumer=consumer),
                      settings, host, port, sock)
    finally:
        storage.close()


def serve_api(settings: Settings, host: str, port: int,
              sock: socket.socket | None = None) -> int:
    """`viewstats api`: the query service alone, on a database migrated by `viewstats migrate`."""
    storage = open_storage(settings)
    try:
        routes = [*query_routes(storage, KeyStore(settings.keys_path),
                                settings.dashboard_assets_path, settings),
                  *ops_routes(_checks(storage))]
        return _serve(build_app(routes), settings, host, port, sock)
    finally:
        storage.close()


class _DrainingServer(uvicorn.Server):
    """SIGTERM or SIGINT: stop taking requests, run the lifespan's shutdown (flush, commit),
    exit 0. Plain uvicorn re-raises the signal after that, turning a clean stop into 143."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def _serve(app: Starlette, settings: Settings, host: str, port: int,
           sock: socket.socket | None) -> int:
    """Serve `app` until SIGTERM or SIGINT; the process's exit code.

    A startup that fails (the lifespan's, or a port that cannot be bound) never returns here:
    uvicorn logs the cause and raises SystemExit(3), which ends the process with 3. A shutdown
    that fails only logs its traceback in uvicorn: then 1, since acknowledged work may not have
    been flushed or committed, or the consumer had stopped on an error (_report_failure), and
    an orchestrator must see that the process failed.
    """
    # X-Forwarded-For is the collector's to interpret (TRUSTED_PROXIES), not uvicorn's.
    # log_config=None keeps the JSON logging the CLI set up.
    # The protocol bounds header size, body size, read times (slowloris) and how long an answer
    # may wait for its reader, as uvicorn does not.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False,
                            proxy_headers=False, log_config=None,
                            http=protocol_with(
                                HttpLimits(write_timeout=settings.http_write_timeout_s)))
    server = _DrainingServer(config)
    # `sock`: a worker's slot of viewstats.workers, already listening on host:port.
    server.run(sockets=None if sock is None else [sock])
    return 1 if server.lifespan.shutdown_failed else 0
