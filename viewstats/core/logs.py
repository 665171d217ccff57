"""Structured logs: one JSON object per line on stderr, for log shippers to parse."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

# The id of the HTTP request being served (viewstats/http_layers.py). uvicorn runs each request
# in a task of its own, which copies the context, and Starlette's thread pool copies it again, so
# each request sees only its own id, and code outside a request sees None.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Stamps a record with the request it was logged in, for every log line of a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := getattr(record, "request_id", None):
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class RepeatLimit(logging.Filter):
    """For warnings and errors of loggers under `prefix`: at most one record per logger and
    message template every `interval_s`; the next one let through says how many were held back.

    During a broker outage aiokafka's clients retry their metadata with no pause and log every
    attempt: 2-4 thousand lines a second, 300-500 thousand in a minute. One line per kind of
    failure every few seconds says the same to an operator. Its info lines are left alone: they
    are the group's state changes (coordinator found, joined, partitions assigned), a handful
    per rebalance, and one held back could never be shown (only a later one says what was).
    """

    def __init__(self, prefix: str, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._prefix = prefix
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # -> (let through, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self._prefix):
            return True
        key = (record.name, record.msg)
        now = self._clock()
        with self._lock:
            shown, held = self._seen.get(key, (float("-inf"), 0))
            if now - shown < self._interval_s:
                self._seen[key] = (shown, held + 1)
                return False
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} like it in the last {now - shown:.0f} s)"
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    # On the handler: a logger's own filters do not see its children's records.
    handler.addFilter(RepeatLimit("aiokafka"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers would otherwise print plain text through handlers of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

