"""Query latency of the countries endpoint over HTTP, per the matrix of architecture §10.

    python -m benchmarks.query_latency --data-dir data-bench --requests 2000

Cells: the heaviest and the median client by windows of 1, 31 and 365 days whose ends fall
inside hours (so every part of the plan is used: raw edges, hours, days). For each cell the
same answer is first computed from `player_events` alone (the speed-up baseline, timed in this
run), then `viewstats api` is started on the data and loaded at a fixed concurrency; the API's
answer must equal the baseline. Results go to stdout and to a JSON file for RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.http_load import get_request, run_load
from benchmarks.record import write_result
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage
from viewstats.devtools.processes import serving

RAW_SQL = """
SELECT toString(country) AS c, count() AS views FROM player_events
WHERE client_id = {client:UInt32} AND event = 'watch'
  AND ts >= parseDateTime64BestEffort({start:String}, 3, 'UTC')
  AND ts <= parseDateTime64BestEffort({end:String}, 3, 'UTC')
GROUP BY c
"""
WINDOWS = {"1d": 1, "31d": 31, "365d": 365}


def _clients(storage: Storage) -> dict[str, int]:
    rows = storage.query("SELECT client_id, sum(views) AS v FROM views_by_country_daily "
                         "GROUP BY client_id ORDER BY v DESC")
    if not rows:
        raise SystemExit("no views in the database: run benchmarks.generate first")
    return {"heaviest": int(rows[0][0]), "median": int(rows[len(rows) // 2][0])}


def _windows(storage: Storage) -> dict[str, tuple[str, str]]:
    last = storage.query("SELECT toString(max(day)) FROM views_by_country_daily")[0][0]
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) - timedelta(days=2)
    end = end.replace(hour=17, minute=42, second=55, microsecond=750_000)
    return {name: ((end - timedelta(days=days, hours=7, minutes=25, seconds=52)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z"),
        end.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        for name, days in WINDOWS.items()}


def _raw(storage: Storage, client: int, window: tuple[str, str], runs: int
         ) -> tuple[dict[str, int], float]:
    times = []
    answer: dict[str, int] = {}
    for _ in range(runs):
        started = time.perf_counter()
        rows = storage.query(RAW_SQL, {"client": client, "start": window[0], "end": window[1]})
        times.append((time.perf_counter() - started) * 1000)
        answer = {str(c): int(v) for c, v in rows}
    return answer, statistics.median(times)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _shifted(window: tuple[str, str], ms: int) -> tuple[str, str]:
    """The window with its start `ms` earlier: a distinct question with a near-equal answer."""
    start = datetime.fromisoformat(window[0].replace("Z", "+00:00")) - timedelta(milliseconds=ms)
    return start.isoformat(timespec="milliseconds").replace("+00:00", "Z"), window[1]


def _target(window: tuple[str, str]) -> str:
    return f"/streaming/statistics/countries?date_from={window[0]}&date_to={window[1]}"


def _answer(base: str, token: str, window: tuple[str, str]) -> dict[str, int]:
    body = httpx.get(base + _target(window), headers={"Authorization": f"apikey {token}"}).json()
    return {r["country"]: r["views"] for r in body["data"]}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per cell and mode: `repeated` asks one window again and again (answers come from the
    cache after the first); `distinct` shifts the start by 1 ms per request, so every answer
    is computed by the database."""
    count = args.warmup + args.requests
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        clients, windows = _clients(storage), _windows(storage)
        baselines = {}
        for who, client in clients.items():
            for name, window in windows.items():
                _progress(f"baseline from player_events: {who} client {client}, {name}")
                baselines[who, name] = (_raw(storage, client, window, args.raw_runs),
                                        _raw(storage, client, _shifted(window, count), 1)[0])
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    tokens = {who: create_key(keys, client)[1] for who, client in clients.items()}
    cells = []
    with serving("api", args.data_dir, env={"API_KEYS_FILE": str(keys)}) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        for (who, name), ((expected, raw_ms), expected_last) in baselines.items():
            window = windows[name]
            auth = {"Authorization": f"apikey {tokens[who]}"}
            for mode in ("distinct", "repeated"):
                shifts = range(1, count + 1) if mode == "distinct" else [0]
                requests = [get_request("127.0.0.1", port, _target(_shifted(window, ms)), auth)
                            for ms in shifts]
                asyncio.run(run_load("127.0.0.1", port, requests[:args.warmup] or requests,
                                     concurrency=args.concurrency, total=args.warmup))
                load = asyncio.run(run_load("127.0.0.1", port, requests[args.warmup:] or requests,
                                            concurrency=args.concurrency, total=args.requests))
                equal = _answer(base, tokens[who], window) == expected and (
                    _answer(base, tokens[who], _shifted(window, count)) == expected_last)
                cell = {"client": who, "client_id": clients[who], "window": name, "mode": mode,
                        "date_from": window[0], "date_to": window[1],
                        "requests": len(load.latencies_ms), "statuses": load.statuses,
                        "p50_ms": load.percentile(50), "p95_ms": load.percentile(95),
                        "p99_ms": load.percentile(99), "max_ms": max(load.latencies_ms),
                        "rps": load.per_second, "raw_ms": raw_ms,
                        "speedup": raw_ms / load.percentile(50),
                        "views": sum(expected.values()), "equal": equal}
                cells.append(cell)
                _progress(f"{who:>8} {name:>4} {mode:>8}: p50 {cell['p50_ms']:7.2f} ms  p99 "
                          f"{cell['p99_ms']:7.2f} ms  {cell['rps']:6.0f} req/s  raw "
                          f"{raw_ms:8.1f} ms  equal={equal}")
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data-bench"),
                        help="embedded data dir made by benchmarks.generate")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--requests", type=int, default=400, help="measured per cell (400)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured per cell (40)")
    parser.add_argument("--raw-runs", type=int, default=3, help="baseline runs per cell (3)")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = parser.parse_args(argv)
    cells = measure(args)
    if args.out:
        write_result(args.out, {"benchmark": "query_latency", "concurrency": args.concurrency,
                                "cells": cells})
    failed = [c for c in cells if not c["equal"] or set(c["statuses"]) != {200}]
    if failed:
        print(f"{len(failed)} cell(s) answered differently from player_events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
