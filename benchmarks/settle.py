"""The settle mode both query benchmarks share (issue 20: "after a client's first request, its
buckets are in memory within seconds even while eight connections keep the API busy").

A fresh `viewstats api` process meets the client (one request per endpoint, as the mix does)
and is at once asked the whole mix at concurrency 8 for `--settle-seconds`. Each second's
answers give a p50; the API's /metrics, read once a second, give the bytes of sealed buckets it
keeps (`viewstats_sealed_bytes`) and its sealed-bucket lookups by result, so one reads when the
buckets arrived and whether the answers got faster when they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from benchmarks.asks import api_process, progress
from benchmarks.http_load import Load, percentile, run_load
from benchmarks.mix import Session, checked

CONCURRENCY = 8
_SERIES = {"viewstats_sealed_bytes": "sealed_bytes",
           'viewstats_sealed_lookups_total{result="hit"}': "hits",
           'viewstats_sealed_lookups_total{result="miss"}': "misses"}


def _scrape(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in _SERIES:
            found[_SERIES[name]] = float(value)
    return found


async def _observed(url: str, port: int, requests: list[bytes], seconds: float,
                    keep: frozenset[int]) -> tuple[Load, list[dict[str, float]]]:
    """The load, and /metrics read every second from its start (the first read: before it)."""
    samples: list[dict[str, float]] = []

    async def sample(client: httpx.AsyncClient, started: float) -> None:
        while True:
            at = time.perf_counter() - started
            samples.append({"at_s": at, **_scrape((await client.get(url + "/metrics")).text)})
            await asyncio.sleep(max(0.0, len(samples) - (time.perf_counter() - started)))

    async with httpx.AsyncClient(timeout=30) as client:
        sampler = asyncio.create_task(sample(client, time.perf_counter()))
        try:
            load = await run_load("127.0.0.1", port, requests, concurrency=CONCURRENCY,
                                  total=len(requests), seconds=seconds, keep=keep)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        samples.append({"at_s": load.seconds,
                        **_scrape((await client.get(url + "/metrics")).text)})
    return load, samples


def _per_second(load: Load, samples: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Each whole second of the run: its answers' count and p50 (200s), its 429s, and the
    last /metrics read by its end."""
    rows = []
    for second in range(int(load.seconds) + 1):
        found = [(answer.status, ms) for answer, ms in zip(load.answers, load.latencies_ms,
                                                           strict=True)
                 if int(answer.at_s) == second]
        latencies = [ms for status, ms in found if status == 200]
        read = [s for s in samples if s["at_s"] < second + 1]
        rows.append({"second": second, "answers": len(latencies),
                     "refused": sum(status == 429 for status, _ in found),
                     "p50_ms": percentile(latencies, 50) if latencies else None,
                     **({k: v for k, v in read[-1].items() if k != "at_s"} if read else {})})
    return rows


def measure(session: Session) -> dict[str, Any]:
    items, args, checked_before = session.plan.settle, session.args, session.checked
    with api_process(args, session.keys) as (url, port):
        session.meet(port)
        load, samples = asyncio.run(_observed(url, port, session.requests(port, items),
                                              args.settle_seconds,
                                              checked(items, args.mix_checks)))
    session.failed("settle", load)
    session.check(items, load)
    rows = _per_second(load, samples)
    for row in rows:
        progress(f"settle {row['second']:>3} s: {row['answers']:>6} answers, p50 "
                 + (f"{row['p50_ms']:8.2f} ms" if row["p50_ms"] is not None else "       -")
                 + f", sealed {row.get('sealed_bytes', 0) / 2**20:8.1f} MiB")
    return {"concurrency": CONCURRENCY, "seconds": load.seconds,
            "answers": load.statuses.get(200, 0), "refused": load.statuses.get(429, 0),
            "made": len(items), "checked": session.checked - checked_before,
            "per_second": rows,
            "samples": samples}
