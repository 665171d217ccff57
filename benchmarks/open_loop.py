"""Open-loop HTTP/1.1 load: requests at a fixed arrival rate, as real players send them.

Request n is due `n / rate` seconds after the start, whether or not earlier ones were
answered; a closed loop (benchmarks.http_load) instead waits for each answer before the next
request, so a slow server is sent less and its queueing never shows. Latency is measured from
the request's due time, not from when it left (no coordinated omission): a request that waits
for a free connection, or for a generator that fell behind, waits on the clock. How far the
generator itself fell behind its schedule is reported beside, so a late generator is said, not
measured as a slow server.

Keep-alive connections carry one request at a time; one that is free takes the next due
request, and when none is, another opens (rate x latency are in flight), up to
`max_connections`, beyond which due requests queue for the first to free. The connections are
bare asyncio protocols, like http_load's, so the generator's CPU per request stays low on a
machine it shares with the server. Answers are read by their Content-Length.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from benchmarks.http_load import content_length, percentile

# Connections opening at once, at most: a burst of due requests opens a few more, not one each,
# whose handshakes would cost the server more than the requests.
CONNECTING = 4
TIMER_S = 0.001  # the event loop's timers have ms resolution; a shorter sleep would spin
UNANSWERED = 0  # status of a request without an answer when the run ended
LOST = -1  # status of a request whose connection closed before its answer


@dataclass
class Timings:
    """Per request n (due at n / rate s): when the generator got to it and when its answer
    came, in seconds after `started` (time.monotonic), and the answer's status."""

    rate: float
    started: float
    dispatched: array[float] = field(default_factory=lambda: array("d"))
    answered: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("h"))
    peak_connections: int = 0
    queued: int = 0  # requests that found every connection busy at max_connections

    def due(self, number: int) -> float:
        return number / self.rate


class Window(NamedTuple):
    """The requests due in a window of one run, and the 202 answers that arrived in it."""

    seconds: float
    due: int
    answered_202: int
    latencies_ms: list[float]  # from the due time; inf: unanswered when the run ended
    lags_ms: list[float]  # how late the generator got to each due request
    other_answers: dict[str, int]  # status (or "lost", "unanswered") -> count, of those due
    peak_connections: int  # of the whole run, as `queued`
    queued: int


def window(timings: Timings, start: float, end: float) -> Window:
    """The requests of `timings` due in [start, end) s after the run's start."""
    first = math.ceil(start * timings.rate)
    last = min(len(timings.status), math.ceil(end * timings.rate))
    latencies, lags, other = [], [], dict[str, int]()
    for n in range(first, last):
        due, status = timings.due(n), timings.status[n]
        lags.append((timings.dispatched[n] - due) * 1000)
        latencies.append((timings.answered[n] - due) * 1000 if status > 0 else math.inf)
        if status != 202:
            name = {UNANSWERED: "unanswered", LOST: "lost"}.get(status, str(status))
            other[name] = other.get(name, 0) + 1
    arrived = sum(1 for n, status in enumerate(timings.status)
                  if status == 202 and start <= timings.answered[n] < end)
    return Window(end - start, last - first, arrived, latencies, lags, other,
                  timings.peak_connections, timings.queued)


def figures(windows: Sequence[Window]) -> dict[str, object]:
    """The windows of several runs (rounds) together: offered and achieved rates, latency
    percentiles from the due time (None: beyond the run, unanswered), the generator's lag."""
    seconds = sum(w.seconds for w in windows)
    latencies = [ms for w in windows for ms in w.latencies_ms]
    lags = [ms for w in windows for ms in w.lags_ms]
    other: dict[str, int] = {}
    for w in windows:
        for name, count in w.other_answers.items():
            other[name] = other.get(name, 0) + count

    def finite(p: float) -> float | None:
        value = percentile(latencies, p) if latencies else math.inf
        return None if math.isinf(value) else value

    return {"seconds": seconds, "offered_per_s": sum(w.due for w in windows) / seconds,
            "beacons": sum(w.answered_202 for w in windows),
            "beacons_per_s": sum(w.answered_202 for w in windows) / seconds,
            "p50_ms": finite(50), "p99_ms": finite(99), "non_202_answers": other,
            "generator_lag_p99_ms": percentile(lags, 99) if lags else 0.0,
            "generator_lag_max_ms": max(lags, default=0.0),
            "peak_connections": max(w.peak_connections for w in windows),
            "queued_at_max_connections": sum(w.queued for w in windows)}


class _Connection(asyncio.Protocol):
    def __init__(self, load: _Load) -> None:
        self.load = load
        self.buffer = b""
        self.number: int | None = None  # the request in flight
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.load.connected(self)

    def send(self, number: int) -> None:
        assert self.transport is not None
        self.number = number
        self.transport.write(self.load.requests[number % len(self.load.requests)])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.number is not None and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            size = end + 4 + content_length(self.buffer[:end].lower())
            if len(self.buffer) < size:
                return
            status, self.buffer = int(self.buffer[9:12]), self.buffer[size:]
            number, self.number = self.number, None
            self.load.answered(self, number, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.lost(self)


class _Load:
    """The connections of one run and the requests waiting for one."""

    def __init__(self, host: str, port: int, requests: Sequence[bytes], timings: Timings,
                 max_connections: int, on_answer: Callable[[int], None] | None) -> None:
        self.host, self.port, self.requests = host, port, requests
        self.timings, self.max_connections, self.on_answer = timings, max_connections, on_answer
        self.idle: list[_Connection] = []
        self.waiting: deque[int] = deque()
        self.open = self.connecting = 0
        self.tasks: set[asyncio.Task[object]] = set()
        self.connections: set[_Connection] = set()
        self.closing = False  # the run is over
        self.done = asyncio.get_running_loop().create_future()
        self.outstanding = 0

    def dispatch(self, number: int) -> None:
        self.timings.dispatched.append(time.monotonic() - self.timings.started)
        self.timings.answered.append(0.0)
        self.timings.status.append(UNANSWERED)
        self.outstanding += 1
        if self.idle:
            self.idle.pop().send(number)
            return
        self.waiting.append(number)
        if self.open + self.connecting >= self.max_connections:
            self.timings.queued += 1
        elif self.connecting < CONNECTING:
            self.connect()

    def connect(self) -> None:
        self.connecting += 1
        task = asyncio.ensure_future(asyncio.get_running_loop().create_connection(
            lambda: _Connection(self), self.host, self.port))
        self.tasks.add(task)
        task.add_done_callback(self._connect_done)

    def _connect_done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            self.connecting -= 1  # its request stays queued for another connection

    def connected(self, connection: _Connection) -> None:
        self.connecting -= 1
        self.open += 1
        self.connections.add(connection)
        self.timings.peak_connections = max(self.timings.peak_connections, self.open)
        self._next(connection)

    def answered(self, connection: _Connection, number: int, status: int) -> None:
        self.timings.answered[number] = time.monotonic() - self.timings.started
        self.timings.status[number] = status
        if self.on_answer is not None:
            self.on_answer(status)
        self._settled()
        self._next(connection)

    def lost(self, connection: _Connection) -> None:
        if self.closing:
            return  # the run's end: what is in flight stays unanswered
        self.open -= 1
        self.connections.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.number is not None:
            self.timings.status[connection.number] = LOST
            self._settled()

    def _next(self, connection: _Connection) -> None:
        if self.waiting:
            connection.send(self.waiting.popleft())
        else:
            self.idle.append(connection)

    def _settled(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)


async def run_open_loop(host: str, port: int, requests: Sequence[bytes], *, rate: float,
                        seconds: float, drain_s: float, connections: int,
                        max_connections: int,
                        on_answer: Callable[[int], None] | None = None,
                        started: Callable[[float], None] | None = None) -> Timings:
    """Send `requests` in turn (round and round) at `rate` per second for `seconds`, then wait
    up to `drain_s` for the last answers. `connections` are opened before the clock starts,
    more as due requests find none free. `started(t)` is told the run's start (monotonic)."""
    timings = Timings(rate, time.monotonic())
    load = _Load(host, port, requests, timings, max_connections, on_answer)
    for _ in range(connections):
        load.connecting += 1
        await asyncio.get_running_loop().create_connection(lambda: _Connection(load), host, port)
    timings.started = time.monotonic()
    if started is not None:
        started(timings.started)
    total = math.ceil(rate * seconds)
    number = 0
    while number < total:
        now = time.monotonic() - timings.started
        while number < total and timings.due(number) <= now:
            load.dispatch(number)
            number += 1
        if number < total:
            await asyncio.sleep(max(TIMER_S, timings.due(number) - (time.monotonic() -
                                                                    timings.started)))
    if load.outstanding:
        await asyncio.wait([load.done], timeout=drain_s)
    load.closing = True
    for connection in [*load.connections]:
        assert connection.transport is not None
        connection.transport.close()
    for task in load.tasks:
        task.cancel()
    return timings
