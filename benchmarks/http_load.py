"""A lean HTTP/1.1 keep-alive load generator for measurements on loopback.

Each connection sends the next request as soon as the previous answer is read, so `concurrency`
requests are always in flight. Connections are bare asyncio protocols (which uvloop runs
natively): a full client such as httpx spends several times the server's CPU per request, so on
a small machine it would measure itself. Requests are raw bytes, made once before the run, and
answers are read by their Content-Length, as Starlette sends them (no chunked bodies, gzip
included: its middleware compresses a whole body at once).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast


class Answered(NamedTuple):
    """One answer: the request's number in sending order (it sent `requests[number %
    len(requests)]`), its status, and when it arrived, in seconds since the run started."""
    number: int
    status: int
    at_s: float


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    answers: list[Answered] = field(default_factory=list)  # beside latencies_ms, in its order
    # The head and body of the answers whose number was in `keep`, to check them afterwards.
    kept: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def get_request(host: str, port: int, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


@dataclass
class _Run:
    """What the connections of one run share: the requests, when to stop, the answers."""

    requests: Sequence[bytes]
    total: int | None
    deadline: float
    on_answer: Callable[[int], None] | None
    keep: frozenset[int]
    started: float = field(default_factory=time.perf_counter)
    load: Load = field(default_factory=Load)
    sent: int = 0

    def next_request(self) -> tuple[int, bytes] | None:
        if (self.total is not None and self.sent >= self.total) or (
                time.monotonic() >= self.deadline):
            return None
        self.sent += 1
        return self.sent - 1, self.requests[(self.sent - 1) % len(self.requests)]

    def answered(self, number: int, status: int, started: float, head: bytes,
                 body: bytes) -> None:
        now = time.perf_counter()
        self.load.latencies_ms.append((now - started) * 1000)
        self.load.statuses[status] = self.load.statuses.get(status, 0) + 1
        self.load.answers.append(Answered(number, status, now - self.started))
        if number in self.keep:
            self.load.kept[number] = head, body
        if self.on_answer is not None:
            self.on_answer(status)


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run, closed: asyncio.Future[None]) -> None:
        self.run, self.closed = run, closed
        self.buffer = b""
        self.started: float | None = None  # when the request in flight was sent
        self.number = 0  # the request in flight's, in sending order
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        request = self.run.next_request()
        if request is None:
            self.started = None
            self.transport.close()
            return
        self.number = request[0]
        self.started = time.perf_counter()
        self.transport.write(request[1])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.started is not None and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            size = end + 4 + content_length(head)
            if len(self.buffer) < size:
                return
            body, self.buffer = self.buffer[end + 4:size], self.buffer[size:]
            self.run.answered(self.number, int(head[9:12]), self.started, head, body)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        if self.started is not None:
            self.closed.set_exception(ConnectionError(f"connection lost before an answer: {exc}"))
        else:
            self.closed.set_result(None)


def content_length(head: bytes) -> int:
    """The Content-Length of a lower-cased response head; 0 when there is none."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    end = head.find(b"\r\n", start)
    return int(head[start:] if end < 0 else head[start:end])


async def run_load(host: str, port: int, requests: Sequence[bytes], *, concurrency: int,
                   total: int | None = None, seconds: float | None = None,
                   on_answer: Callable[[int], None] | None = None,
                   keep: frozenset[int] = frozenset()) -> Load:
    """Send `requests` in turn (round and round), `concurrency` at a time, until `total` are
    sent or `seconds` have passed, and wait for their answers; `on_answer(status)` is called on
    each as it arrives (for progress read while the run goes on). The answers to the requests
    numbered in `keep` (in sending order) are kept whole, in `Load.kept`."""
    loop = asyncio.get_running_loop()
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    run = _Run(requests, total, deadline, on_answer, keep)
    started = run.started
    closed = [loop.create_future() for _ in range(concurrency)]
    for done in closed:
        await loop.create_connection(functools.partial(_Connection, run, done), host, port)
    await asyncio.gather(*closed)
    run.load.seconds = time.perf_counter() - started
    return run.load
