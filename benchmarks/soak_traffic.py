"""The soak's traffic (benchmarks.soak): beacons at a steady rate from a client that resends
refused ones as the player does, and questions about random windows, with their latencies.

Each beacon is a new view (`watch`, a fresh view_id) from one of a few public addresses, passed
as a proxy on loopback passes them (X-Forwarded-For), so the views spread over countries. A
beacon answered 5xx or 429, or not answered within BEACON_TIMEOUT_S (it may have been stored
all the same), is sent again with the same body after the player's delays (player.js
RETRY_DELAYS_MS: 1 s doubling to 16 s; the player does not read Retry-After), until it is
answered 202: that answer adds its view to `acked`. Where the player hands a view to sendBeacon
after five tries, this client goes on every 16 s while the soak runs, so that `acked` is
exactly what the platform promised to count. A 408 is resent too, as a browser resends a
request answered 408 on a reused connection: the collector sends it when a connection's
request head is late, which here means this client was too busy to write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from benchmarks.http_load import percentile

BEACON_TIMEOUT_S = 15.0  # 3 x KAFKA_PRODUCE_TIMEOUT_S: the collector answers well before
QUERY_TIMEOUT_S = 30.0
BACKOFF_S = (1, 2, 4, 8, 16)  # player.js RETRY_DELAYS_MS
# Requests in flight at once: views waiting for a slot wait in the client, not on the server.
MAX_CONNECTIONS = 256
ADDRESSES = ("8.8.8.8", "1.1.1.1", "81.2.69.142", "202.12.27.33", "200.160.2.3",
             "77.88.8.8", "196.216.2.1", "41.203.18.1")
ZONES = ("Asia/Kolkata", "America/New_York", "Australia/Adelaide", "Europe/Berlin", "UTC")
# The countries endpoint and the family's (architecture §15), as a dashboard asks them.
QUERIES = (
    "countries", "countries", "countries", "views", "views?granularity=1h",
    "views?group=country", "hosts", "popular?limit=10",
)
STATS = "/streaming/statistics/"
TOTAL_WINDOW = {"date_from": "2020-01-01", "date_to": "2099-12-31"}


@dataclass
class Beacons:
    base: str
    client_id: int
    rate: float
    acked: set[str] = field(default_factory=set)
    sent: int = 0  # views started
    resent: Counter[str] = field(default_factory=Counter)  # why, by status or "no answer"
    unexpected: list[str] = field(default_factory=list)  # 4xx: the view is dropped
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def pending(self) -> int:
        """Views not answered 202 yet (in flight, or waiting to be sent again)."""
        return len(self._tasks)

    async def run(self, stop: asyncio.Event, drain_s: float) -> None:
        """Start a view every 1/rate s until `stop`, then wait up to `drain_s` for the views
        still being resent; those left are cancelled (`pending` tells how many)."""
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS,
                              max_keepalive_connections=MAX_CONNECTIONS)
        timeout = httpx.Timeout(BEACON_TIMEOUT_S, pool=None)
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=timeout) as http:
            rng = random.Random(self.client_id)

            def view() -> Coroutine[Any, Any, None]:
                self.sent += 1
                return self._deliver(http, rng.choice(ADDRESSES))

            await paced(self.rate, stop, view, self._tasks)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=drain_s)
            left = set(self._tasks)
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            self._tasks = left  # what `pending` reports from now on

    async def _deliver(self, http: httpx.AsyncClient, address: str) -> None:
        view = str(uuid.uuid4())
        body = {"event": "watch", "client_id": self.client_id, "video_id": f"v-{view[:1]}",
                "type": "vod", "view_id": view}
        headers = {"X-Forwarded-For": address}
        for attempt in itertools.count():
            try:
                response = await http.post("/events", json=body, headers=headers)
            except httpx.TransportError:  # no answer: it may be stored; the same body again
                self.resent["no answer"] += 1
            else:
                status = response.status_code
                if status == 202:
                    self.acked.add(view)
                    return
                if status < 500 and status not in (408, 429):
                    self.unexpected.append(f"{status} {response.text[:200]}")
                    return
                self.resent[str(status)] += 1
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])


@dataclass
class Queries:
    """Questions at `rate` per second, each a random query over a random window near now."""

    base: str
    token: str
    rate: float
    since_ms: int  # windows start up to two hours before this, and end up to ten min after now
    rng: random.Random
    answered: deque[tuple[float, float]] = field(default_factory=deque)  # (done at, ms) of 200s
    statuses: Counter[str] = field(default_factory=Counter)  # by status, "no answer" included
    failures: list[str] = field(default_factory=list)  # the first few answers other than 200

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"apikey {self.token}"}
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(base_url=self.base, headers=headers,
                                     timeout=QUERY_TIMEOUT_S) as http:
            await paced(self.rate, stop, lambda: self._ask(http, *self.question()), tasks)
            await asyncio.gather(*tasks, return_exceptions=True)

    def question(self) -> tuple[str, dict[str, str]]:
        """A query and its window: minute edges (sometimes seconds) in a real time zone."""
        query = self.rng.choice(QUERIES)
        path, _, extra = query.partition("?")
        now_ms = int(time.time() * 1000)
        start = self.rng.randrange(self.since_ms - 2 * 3_600_000, now_ms)
        end = self.rng.randrange(start, now_ms + 600_000)
        zone = ZoneInfo(self.rng.choice(ZONES))
        spec = self.rng.choice(("minutes", "minutes", "minutes", "seconds"))
        params = dict(p.split("=") for p in extra.split("&")) if extra else {}
        params["date_from"], params["date_to"] = (
            datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).isoformat(timespec=spec)
            for ms in (start, end))
        return STATS + path, params

    async def _ask(self, http: httpx.AsyncClient, path: str, params: dict[str, str]) -> None:
        started = time.perf_counter()
        try:
            response = await http.get(path, params=params)
        except httpx.TransportError as exc:
            self.statuses["no answer"] += 1
            if len(self.failures) < 10:
                self.failures.append(f"{path}: {exc!r}")
            return
        self.statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            self.answered.append((time.monotonic(), (time.perf_counter() - started) * 1000))
        elif len(self.failures) < 10:
            self.failures.append(f"{path} {params}: {response.status_code} "
                                 f"{response.text[:200]}")

    def p99_ms(self, window_s: float) -> tuple[float | None, int]:
        """The p99 of the 200 answers of the last `window_s` seconds, and how many there were."""
        cutoff = time.monotonic() - window_s
        while self.answered and self.answered[0][0] < cutoff:
            self.answered.popleft()
        latencies = [ms for _, ms in self.answered]
        return (percentile(latencies, 99) if latencies else None), len(latencies)


async def paced(rate: float, stop: asyncio.Event,
                start: Callable[[], Coroutine[Any, Any, None]],
                tasks: set[asyncio.Task[None]]) -> None:
    """Start `start()` as a task `rate` times a second, on a steady clock, until `stop`; the
    tasks still running are in `tasks`."""
    next_at = time.monotonic()
    while not stop.is_set():
        task = asyncio.create_task(start())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += 1 / rate
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))


async def total_views(base: str, token: str) -> int:
    """Every view the key's client has, from the served countries endpoint."""
    async with httpx.AsyncClient(base_url=base, timeout=QUERY_TIMEOUT_S) as http:
        response = await http.get(STATS + "countries", params=TOTAL_WINDOW,
                                  headers={"Authorization": f"apikey {token}"})
    response.raise_for_status()
    return sum(int(row["views"]) for row in response.json()["data"])

