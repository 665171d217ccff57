"""Query latency of the countries endpoint over HTTP, in the three modes of architecture §10.

    python -m benchmarks.query_latency --data-dir data-bench --out results/query_latency.json

Cells: {heaviest, median, a random tail client} x {1, 31, 365 days} x {day-aligned, partial-hour
edges}, each measured in three modes:
- cold: every request is the first of its client on a fresh `viewstats api` process (after a few
  requests for other clients have warmed the engine), so nothing about that client is in memory;
- warm: new windows over what earlier requests loaded: day-aligned windows anywhere in the
  client's history, or windows whose ends move by random milliseconds inside the same hours;
  no two requests are alike, so no whole-window answer can be reused;
- repeated: one window again and again.
In the same run: the engine floor F (a one-row point read through the same storage layer, in
this process) and the `player_events` baseline (the same answer counted from the raw events).
Each cell reports p50 and p99 in ms and as multiples of F; every answer checked against
`player_events` must be equal. `--api-source DIR` starts the API in another checkout's folder,
so it runs that checkout's code (e.g. the previous release) on the same data, for a
before/after comparison in one session.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.asks import (
    DAYS,
    SHAPES,
    Ask,
    Floor,
    Windows,
    add_options,
    api_process,
    cell,
    complete,
    finish,
    load_cell,
    pick_clients,
    progress,
    timed,
)
from benchmarks.http_load import get_request, run_load
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage

RAW_SQL = """SELECT toString(country) AS c, count() AS views FROM player_events
WHERE client_id = {client:UInt32} AND event = 'watch'
  AND ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
  AND ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
GROUP BY c"""


def _target(ask: Ask) -> str:
    return f"/streaming/statistics/countries?{ask.window_query}"


def raw_answer(storage: Storage, ask: Ask, runs: int = 1) -> tuple[dict[str, int], float]:
    rows, times = timed(storage, RAW_SQL, {"client": ask.client, "start": ask.start_ms,
                                           "end": ask.end_ms}, runs)
    return {str(c): int(v) for c, v in rows}, statistics.median(times)


def _answer(base: str, token: str, ask: Ask) -> dict[str, int]:
    body = httpx.get(base + _target(ask), headers={"Authorization": f"apikey {token}"},
                     timeout=60).json()
    return {r["country"]: r["views"] for r in body["data"]}


def _misses(url: str) -> float | None:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith('viewstats_sealed_lookups_total{result="miss"}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def _settle(url: str, token: str, ask: Ask, timeout_s: float = 60.0) -> None:
    """Ask `ask` until it finds every sealed bucket it needs in memory, i.e. the background
    loads it started are done (an API without sealed buckets is not waited for)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = _misses(url)
        _answer(url, token, ask)
        if before is None or _misses(url) == before:
            return
        time.sleep(0.1)


def _labels(key: tuple[str, str, str]) -> dict[str, str]:
    return dict(zip(("client", "window", "shape"), key, strict=True))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        clients = pick_clients(storage, rng)
        windows = Windows.of(storage, rng)
        floor = Floor(storage, clients["median"], windows.first, args.floor_runs)
        base = {(who, w, s): windows.new(c, days, s) for who, c in clients.items()
                for w, days in DAYS.items() for s in SHAPES}
        cold = [{key: windows.new(ask.client, DAYS[key[1]], key[2]) for key, ask in base.items()}
                for _ in range(args.cold_runs)]
        checks: dict[Ask, dict[str, int]] = {}
        raw_ms = {}
        for key, ask in base.items():
            progress(f"player_events baseline: {key}")
            checks[ask], raw_ms[key] = raw_answer(storage, ask, args.raw_runs)
        for run in cold:
            for ask in run.values():
                checks[ask] = raw_answer(storage, ask)[0]
        # New windows for each concurrency: none repeats one asked before.
        warm_asks = {(key, concurrency): [windows.near(ask) for _ in range(args.requests)]
                     for key, ask in base.items() for concurrency in (1, 8)}
        for asks in warm_asks.values():
            for ask in asks[:args.checks]:
                checks[ask] = raw_answer(storage, ask)[0]
        others = [windows.new(int(c), 31, "edges") for (c,) in storage.query(
            "SELECT DISTINCT client_id FROM views_by_country_daily WHERE client_id NOT IN "
            "{ids:Array(UInt32)} LIMIT {n:UInt32}",
            {"ids": str(list(clients.values())), "n": args.cold_warmup * args.cold_runs * 6})]
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    tokens = {c: create_key(keys, c)[1] for c in {*clients.values(), *(a.client for a in others)}}
    headers = {c: {"Authorization": f"apikey {t}"} for c, t in tokens.items()}
    cells: list[dict[str, Any]] = []
    mismatches: list[str] = []

    def check(url: str, ask: Ask) -> None:
        if ask in checks and _answer(url, tokens[ask.client], ask) != checks[ask]:
            mismatches.append(_target(ask))

    cold_ms: dict[tuple[str, str, str], list[float]] = {key: [] for key in base}
    for number, run in enumerate(cold):
        # A process per window and shape, so that each cold request is its client's first.
        for window, shape in ((w, sh) for w in DAYS for sh in SHAPES):
            with api_process(args, keys) as (url, port):
                for ask in others[:args.cold_warmup]:
                    _settle(url, tokens[ask.client], ask)
                del others[:args.cold_warmup]
                for key, ask in run.items():
                    if key[1:] != (window, shape):
                        continue
                    # Timed like the other modes (a bare keep-alive connection): a new httpx
                    # client per request would add its own ~20 ms of setup to each answer.
                    load = asyncio.run(run_load(
                        "127.0.0.1", port,
                        [get_request("127.0.0.1", port, _target(ask), headers[ask.client])],
                        concurrency=1, total=1))
                    cold_ms[key] += load.latencies_ms
                    if set(load.statuses) != {200}:
                        mismatches.append(f"cold {_target(ask)}: statuses {load.statuses}")
                    check(url, ask)
                    # The next client's first request on an idle process, not beside this
                    # one's background loads.
                    _settle(url, tokens[ask.client], ask)
        progress(f"cold: run {number + 1} of {len(cold)} done")
    for key, latencies in cold_ms.items():
        cells.append(cell("cold", _labels(key), 1, latencies, floor.ms))
    with api_process(args, keys) as (url, port):
        for key, ask in base.items():
            _settle(url, tokens[ask.client], ask)  # loads what the warm windows reuse
            check(url, ask)
            for concurrency in (1, 8):
                requests = [get_request("127.0.0.1", port, _target(a), headers[ask.client])
                            for a in warm_asks[key, concurrency]]
                cells.append(load_cell("warm", _labels(key), port, requests, concurrency,
                                       len(requests), floor.ms, mismatches))
            for ask in warm_asks[key, 1][:args.checks]:
                check(url, ask)
            for concurrency in (1, 8):
                requests = [get_request("127.0.0.1", port, _target(ask), headers[ask.client])]
                cells.append(load_cell("repeated", _labels(key), port, requests, concurrency,
                                       args.requests, floor.ms, mismatches))
        throughput = []
        key = ("median", "31d", "edges")
        for concurrency in (1, 8, 32):
            requests = [get_request("127.0.0.1", port, _target(windows.near(base[key])),
                                    headers[base[key].client]) for _ in range(args.requests)]
            load = asyncio.run(run_load("127.0.0.1", port, requests, concurrency=concurrency,
                                        total=len(requests)))
            throughput.append({"concurrency": concurrency, "rps": load.per_second,
                               "p50_ms": load.percentile(50), "p99_ms": load.percentile(99)})
            progress(f"throughput {key} warm c{concurrency}: {load.per_second:.0f} req/s")
    floor.again(args.data_dir)
    complete(cells, floor.ms, raw_ms, ("client", "window", "shape"), clients)
    return {**floor.summary(),
            "clients": clients, "cells": cells, "throughput": throughput,
            "checked": len(checks), "mismatches": mismatches,
            "api_source": str(args.api_source) if args.api_source else "this checkout"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, checks=3, raw_runs=3, seed=11)
    parser.add_argument("--requests", type=int, default=200,
                        help="measured requests per warm and repeated cell (200)")
    parser.add_argument("--cold-runs", type=int, default=5,
                        help="cold requests per cell, each the first of its client on a fresh "
                             "API process (5)")
    parser.add_argument("--api-source", type=Path, default=None,
                        help="run `viewstats api` from this checkout (started in its folder)")
    args = parser.parse_args(argv)
    return finish("query_latency", measure(args), args.out)


if __name__ == "__main__":
    sys.exit(main())
