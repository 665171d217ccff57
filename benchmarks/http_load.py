"""A lean HTTP/1.1 keep-alive load generator for measurements on loopback.

Each connection sends the next request as soon as the previous answer is read, so `concurrency`
requests are always in flight. Connections are bare asyncio protocols (which uvloop runs
natively): a full client such as httpx spends several times the server's CPU per request, so on
a small machine it would measure itself. Requests are raw bytes, made once before the run, and
answers are read by their Content-Length, as Starlette sends them (no chunked bodies).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

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
    load: Load = field(default_factory=Load)
    sent: int = 0

    def next_request(self) -> bytes | None:
        if (self.total is not None and self.sent >= self.total) or (
                time.monotonic() >= self.deadline):
            return None
        self.sent += 1
        return self.requests[(self.sent - 1) % len(self.requests)]

    def answered(self, status: int, started: float) -> None:
        self.load.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.load.statuses[status] = self.load.statuses.get(status, 0) + 1
        if self.on_answer is not None:
            self.on_answer(status)


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run, closed: asyncio.Future[None]) -> None:
        self.run, self.closed = run, closed
        self.buffer = b""
        self.started: float | None = None  # when the request in flight was sent
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
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.started is not None and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            size = end + 4 + _content_length(head)
            if len(self.buffer) < size:
                return
            self.buffer = self.buffer[size:]
            self.run.answered(int(head[9:12]), self.started)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        if self.started is not None:
            self.closed.set_exception(ConnectionError(f"connection lost before an answer: {exc}"))
        else:
            self.closed.set_result(None)


def _content_length(head: bytes) -> int:
    """The Content-Length of a lower-cased response head; 0 when there is none."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    end = head.find(b"\r\n", start)
    return int(head[start:] if end < 0 else head[start:end])


async def run_load(host: str, port: int, requests: Sequence[bytes], *, concurrency: int,
                   total: int | None = None, seconds: float | None = None,
                   on_answer: Callable[[int], None] | None = None) -> Load:
    """Send `requests` in turn (round and round), `concurrency` at a time, until `total` are
    sent or `seconds` have passed, and wait for their answers; `on_answer(status)` is called on
    each as it arrives (for progress read while the run goes on)."""
    loop = asyncio.get_running_loop()
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    run = _Run(requests, total, deadline, on_answer)
    started = time.perf_counter()
    closed = [loop.create_future() for _ in range(concurrency)]
    for done in closed:
        await loop.create_connection(functools.partial(_Connection, run, done), host, port)
    await asyncio.gather(*closed)
    run.load.seconds = time.perf_counter() - started
    return run.load
