"""The open-loop generator of benchmarks.collector_throughput: latency from the due time, what
a window counts, and a run against a slow server (more connections, every answer read)."""

from __future__ import annotations

import asyncio
import contextlib
from array import array

from benchmarks.open_loop import LOST, UNANSWERED, Timings, figures, run_open_loop, window


def _timings(rate: float, lags_s: list[float], latencies_s: list[float | None],
             statuses: list[int] | None = None) -> Timings:
    """Request n due at n / rate, dispatched lags_s[n] late, answered latencies_s[n] after its
    due time (None: never)."""
    due = [n / rate for n in range(len(lags_s))]
    return Timings(
        rate, 100.0, array("d", (d + lag for d, lag in zip(due, lags_s, strict=True))),
        array("d", (0.0 if lat is None else d + lat for d, lat in zip(due, latencies_s,
                                                                       strict=True))),
        array("h", statuses or [UNANSWERED if lat is None else 202 for lat in latencies_s]))


def _ms(value: object) -> float:
    assert isinstance(value, float)
    return round(value, 6)


def test_latency_counts_from_the_due_time_not_from_a_late_send() -> None:
    # Request 5 was sent 300 ms late and answered 10 ms after it left: 310 ms from its due
    # time; measured from the send, as a closed loop would, the generator's delay would vanish.
    lags = [0.0] * 10
    lags[5] = 0.3
    latencies: list[float | None] = [0.01] * 10
    latencies[5] = 0.31
    result = figures([window(_timings(10, lags, latencies), 0.0, 1.0)])
    assert _ms(result["p99_ms"]) == 310.0
    assert _ms(result["p50_ms"]) == 10.0
    assert _ms(result["generator_lag_max_ms"]) == 300.0
    assert result["non_202_answers"] == {}


def test_a_window_takes_the_requests_due_in_it_and_the_answers_that_came_in_it() -> None:
    # 20 requests at 10/s; the window [1, 2) s holds requests 10..19. Request 9 (due 0.9 s) is
    # answered at 1.4 s: its answer counts towards the window's rate, its latency does not.
    latencies: list[float | None] = [0.05] * 20
    latencies[9] = 0.5
    measured = window(_timings(10, [0.0] * 20, latencies), 1.0, 2.0)
    assert measured.due == 10
    assert measured.answered_202 == 11  # 9's, and 10..18's and 19's (at 1.95 s)
    assert len(measured.latencies_ms) == 10 and max(measured.latencies_ms) < 60


def test_unanswered_and_refused_requests_are_counted_and_push_the_percentiles_out() -> None:
    latencies: list[float | None] = [0.02] * 10
    latencies[3] = latencies[7] = None
    statuses = [202] * 10
    statuses[3], statuses[7], statuses[8] = UNANSWERED, LOST, 503
    measured = window(_timings(10, [0.0] * 10, latencies, statuses), 0.0, 1.0)
    result = figures([measured, measured])  # two rounds, merged
    assert result["non_202_answers"] == {"unanswered": 2, "lost": 2, "503": 2}
    assert result["p99_ms"] is None  # beyond the run: 20% never answered
    assert result["p50_ms"] is not None
    assert result["offered_per_s"] == 10.0
    assert result["beacons"] == 14  # 202s only


def test_a_slow_server_gets_more_connections_and_every_request() -> None:
    """Each answer takes 50 ms and the schedule sends every 5 ms: one connection cannot carry
    that, so the generator opens more rather than sending later."""
    answered = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.05)
                answered += 1
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()

    async def run() -> Timings:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await run_open_loop(
                "127.0.0.1", port, [b"POST /events HTTP/1.1\r\ncontent-length: 0\r\n\r\n"],
                rate=200, seconds=0.1, drain_s=10, connections=1, max_connections=64)

    timings = asyncio.run(run())
    assert list(timings.status) == [202] * 20
    assert answered == 20
    assert timings.peak_connections > 1
    assert list(timings.dispatched) == sorted(timings.dispatched)
