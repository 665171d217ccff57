"""A lean HTTP/1.1 keep-alive load generator for latency measurements on loopback.

Each worker holds one connection and sends the next request as soon as the previous answer is
read, so `concurrency` requests are always in flight. Bare asyncio streams keep the client's
own CPU small next to the server's (a full client such as httpx would measure itself on two
cores).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def get_request(host: str, port: int, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def run_load(host: str, port: int, requests: list[bytes], *, concurrency: int,
                   total: int) -> Load:
    """Send `total` requests, cycling through `requests`, `concurrency` at a time."""
    load = Load()
    sent = 0

    async def worker() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while sent < total:
                request = requests[sent % len(requests)]
                sent += 1
                started = time.perf_counter()
                status, _ = await _exchange(reader, writer, request)
                load.latencies_ms.append((time.perf_counter() - started) * 1000)
                load.statuses[status] = load.statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.seconds = time.perf_counter() - started
    return load
