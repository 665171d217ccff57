"""Structured logs, and the limit on aiokafka's repeated lines during a broker outage."""

from __future__ import annotations

import logging

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from viewstats.core.logs import JsonFormatter, RepeatLimit, RequestIdFilter
from viewstats.server import build_app


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_a_repeated_aiokafka_line_passes_once_per_interval_and_counts_the_rest() -> None:
    clock = Clock()
    limit = RepeatLimit("aiokafka", interval_s=10, clock=clock)
    first = _record("aiokafka.conn", "Unable connect to node with id %s")
    assert limit.filter(first)
    assert not any(limit.filter(_record("aiokafka.conn", "Unable connect to node with id %s"))
                   for _ in range(3000))
    assert limit.filter(_record("aiokafka.cluster", "Unable connect to node with id %s"))
    clock.now = 10.5
    later = _record("aiokafka.conn", "Unable connect to node with id %s")
    assert limit.filter(later)
    assert "(3000 like it in the last 10 s)" in later.getMessage()


def test_other_loggers_are_never_limited() -> None:
    limit = RepeatLimit("aiokafka", interval_s=10, clock=Clock())
    assert all(limit.filter(_record("viewstats.consumer", "stored a batch")) for _ in range(50))


def test_aiokafka_info_lines_are_never_limited() -> None:
    # The group's state changes: one held back would never be shown.
    limit = RepeatLimit("aiokafka", interval_s=10, clock=Clock())
    assert all(limit.filter(_record("aiokafka.consumer.group_coordinator",
                                    "Discovered coordinator %s for group %s", logging.INFO))
               for _ in range(5))


class Lines(logging.Handler):
    """JSON lines as configure_logging writes them, kept in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


def test_every_log_line_of_a_request_names_its_request_id() -> None:
    log = logging.getLogger("tests.request")

    async def logs(_: Request) -> Response:
        log.warning("in the request")
        await run_in_threadpool(log.warning, "in the thread pool")
        return Response("ok")

    async def fails(_: Request) -> Response:
        raise RuntimeError("boom")  # logged by the app's handler, answered 500

    lines = Lines()
    logging.getLogger().addHandler(lines)
    try:
        with TestClient(build_app([Route("/logs", logs), Route("/fails", fails)]),
                        raise_server_exceptions=False) as client:
            given = client.get("/logs", headers={"X-Request-ID": "gw-1"})
            made = client.get("/logs")
            failed = client.get("/fails")
        log.warning("outside any request")
    finally:
        logging.getLogger().removeHandler(lines)
    assert given.headers["x-request-id"] == "gw-1"
    assert failed.status_code == 500
    ids = [given.headers["x-request-id"]] * 2 + [made.headers["x-request-id"]] * 2
    assert [(line["message"], line.get("request_id")) for line in lines.lines] == [
        *zip(["in the request", "in the thread pool"] * 2, ids, strict=True),
        ("unhandled error on GET /fails", failed.headers["x-request-id"]),
        ("outside any request", None)]
