"""Each client's budget of engine queries, per API process (architecture §17).

Every request that needs the engine passes `QueryBudget.run`: at most `concurrency` of one
client's queries run at once; past that a request waits in the client's queue (at most
`queue_depth` waiting, each at most `queue_wait_ms`), and past the queue or the wait it gets 429.
So one client flooding the API holds a bounded share of the engine's connections and cores, and
the other clients' queries keep theirs; a query that a client starts while more of its own
wait runs at a lower engine priority than other clients', on one engine thread. Every engine
query made inside `run` carries the per-query limits (`max_execution_time`,
`max_memory_usage`); one that hits a limit gets 503, naming it. Answers from memory and
background bucket loads never pass here: they neither wait for a client's turn nor carry the
limits.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy.typing as npt
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from viewstats.core.metrics import QUERY_REFUSED, QUERY_WAITING
from viewstats.core.responses import error_response
from viewstats.core.settings import Settings
from viewstats.core.storage import (
    Params,
    QuerySettings,
    Row,
    Storage,
    StorageError,
)

T = TypeVar("T")

# When a query hit an engine limit, a retry may pass once the engine is less busy; sooner it
# would most likely hit the same limit.
LIMIT_RETRY_AFTER_S = 5

# The engine's limit errors (their names close ClickHouse's message on both backends), and the
# setting that sets each limit.
_LIMIT_ERRORS = {"TIMEOUT_EXCEEDED": "QUERY_MAX_EXECUTION_MS",
                 "MEMORY_LIMIT_EXCEEDED": "QUERY_MAX_MEMORY_MB"}
_LIMIT_ERROR = re.compile(r"\((" + "|".join(_LIMIT_ERRORS) + r")\)")

# The limits of the query the current thread runs for a budgeted request; unset elsewhere (the
# bucket filler's thread, health checks), whose queries therefore run unlimited.
_limits: ContextVar[QuerySettings | None] = ContextVar("query_limits", default=None)


class QueryRefused(Exception):
    """A request the budget answers itself: 429 past the client's queue, 503 past a limit."""

    def __init__(self, status_code: int, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.status_code, self.retry_after_s = status_code, retry_after_s

    def response(self) -> Response:
        return error_response(self.status_code, [str(self)],
                              {"Retry-After": str(self.retry_after_s)})


@dataclass
class _Line:
    """One client's queries: a turn each, and how many run or wait for one."""
    turns: asyncio.Semaphore
    users: int = 0


class QueryBudget:
    def __init__(self, concurrency: int, queue_depth: int, queue_wait_ms: int,
                 max_execution_ms: int, max_memory_mb: int) -> None:
        self.concurrency, self.queue_depth = concurrency, queue_depth
        self.queue_wait_ms = queue_wait_ms
        self.limit_values = {"QUERY_MAX_EXECUTION_MS": f"{max_execution_ms} ms",
                             "QUERY_MAX_MEMORY_MB": f"{max_memory_mb} MB"}
        # Text: QuerySettings holds str or int, and the engine reads fractional seconds from text.
        self.engine_limits: QuerySettings = {"max_execution_time": str(max_execution_ms / 1000),
                                             "max_memory_usage": max_memory_mb << 20}
        self._lines: dict[int, _Line] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryBudget:
        return cls(settings.query_client_concurrency, settings.query_queue_depth,
                   settings.query_queue_wait_ms, settings.query_max_execution_ms,
                   settings.query_max_memory_mb)

    def limited(self, storage: Storage) -> Storage:
        """`storage`, whose queries carry the limits when made inside `run`."""
        return _LimitedStorage(storage)

    async def run(self, client_id: int, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the thread pool, in the client's turn and within the engine limits.
        Raises QueryRefused (429) when no turn comes in time, (503) when a limit is hit."""
        line = self._lines.get(client_id)
        if line is None:
            line = self._lines[client_id] = _Line(asyncio.Semaphore(self.concurrency))
        if line.users >= self.concurrency + self.queue_depth:
            raise self._busy("queue_full", f"{line.users - self.concurrency} of this client's "
                             f"queries already wait (QUERY_QUEUE_DEPTH = {self.queue_depth})")
        line.users += 1
        try:
            QUERY_WAITING.inc()
            try:
                async with asyncio.timeout(self.queue_wait_ms / 1000):
                    await line.turns.acquire()
            except TimeoutError:
                raise self._busy("queue_wait", "no turn came within QUERY_QUEUE_WAIT_MS = "
                                 f"{self.queue_wait_ms}") from None
            finally:
                QUERY_WAITING.dec()
            # A client with queries waiting past its turns yields to the others' queries in
            # the engine (which pauses a running query while one of lower `priority` runs):
            # CPU, not only connections, is what a flood takes from them; one thread each
            # leaves the other cores to them while it runs.
            flooding = line.users > self.concurrency
            limits = {**self.engine_limits, "priority": 2 if flooding else 1,
                      **({"max_threads": 1} if flooding else {})}
            try:
                return await run_in_threadpool(self._call, limits, fn, *args)
            finally:
                line.turns.release()
        finally:
            line.users -= 1
            if line.users == 0:  # nobody holds or awaits its semaphore any more
                del self._lines[client_id]

    def _busy(self, reason: str, why: str) -> QueryRefused:
        QUERY_REFUSED.labels(reason).inc()
        return QueryRefused(429, f"too many queries at once for this client: {why}; "
                                 f"QUERY_CLIENT_CONCURRENCY = {self.concurrency} run at once",
                            max(1, math.ceil(self.queue_wait_ms / 1000)))

    def _call(self, limits: QuerySettings, fn: Callable[..., T], *args: Any) -> T:
        with _limited(limits):
            try:
                return fn(*args)
            except StorageError as exc:
                refused = self._refused_by_engine(exc)
                if refused is None:
                    raise
                raise refused from exc

    def _refused_by_engine(self, exc: StorageError) -> QueryRefused | None:
        """The 503 for an engine limit the query hit, or None for any other failure."""
        found = _LIMIT_ERROR.search(str(exc))
        if found is None:
            return None
        QUERY_REFUSED.labels(found.group(1)).inc()
        setting = _LIMIT_ERRORS[found.group(1)]
        return QueryRefused(503, f"the query exceeded its engine limit {setting} = "
                                 f"{self.limit_values[setting]} ({found.group(1)}): narrow the "
                                 "window or the filters", LIMIT_RETRY_AFTER_S)


@contextmanager
def _limited(limits: QuerySettings) -> Iterator[None]:
    token = _limits.set(limits)
    try:
        yield
    finally:
        _limits.reset(token)


def _with_limits(settings: QuerySettings | None) -> QuerySettings | None:
    limits = _limits.get()
    return settings if limits is None else {**limits, **(settings or {})}


class _LimitedStorage:
    """A Storage whose queries carry the current budgeted request's limits, if any."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.health = storage.health
        self.exclusive = storage.exclusive

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        return self._storage.query(sql, params, _with_limits(settings))

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        return self._storage.query_columns(sql, params, _with_limits(settings))

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        self._storage.command(sql, settings)

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        return self._storage.insert(table, columns, settings, millis=millis)

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        return self._storage.insert_json(table, lines, settings)

    def close(self) -> None:
        self._storage.close()
