r"""Query latency of the countries endpoint over HTTP, in the three modes of architecture §10
and the mix and settle modes of issue 20.

    python -m benchmarks.query_latency --data-dir data-bench \
        --out benchmarks/results/query_latency.json
    python -m benchmarks.query_latency --data-dir data-bench --api-source ../viewstats-previous \
        --out benchmarks/results/query_latency_previous.json
    python -m benchmarks.query_latency --data-dir data-bench --modes mix settle --mix-seconds 5

Cells: {heaviest, median, a random tail client} x {1, 31, 365 days} x {day-aligned, partial-hour
edges}, each measured in three modes:
- cold: every request is the first of its client on a fresh `viewstats api` process (after a few
  requests for other clients have warmed the engine), so nothing about that client is in memory;
- warm: new windows over what earlier requests loaded: day-aligned windows anywhere in the
  client's history, or windows whose ends move by random milliseconds inside the same hours;
  no two requests are alike, so no whole-window answer can be reused;
- repeated: one window again and again.
Then, for one client (`--mix-client`), countries alone:
- mix: windows never asked before in five classes (whole UTC days, whole days at +05:30-like
  offsets, hour, minute and ms edges), gzip accepted, at concurrency 1, 8 and 32, once the
  client has been met (benchmarks.mix);
- settle: a fresh process, met, then at once the mix at concurrency 8, second by second, with
  the sealed bytes the API keeps (benchmarks.settle).
In the same run: the engine floor F (a one-row point read through the same storage layer, in
this process) and the `player_events` baseline (the same answer counted from the raw events).
Each cell reports p50 and p99 in ms and as multiples of F; every answer checked against
`player_events` must be equal. `--modes` runs some of the modes only. `--api-source DIR`
starts the API in another checkout's folder, so it runs that checkout's code (e.g. the
previous release) on the same data, for a before/after comparison in one session: the report
reads a run of it saved as query_latency_previous.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import mix, settle
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
    load_cell,
    pick_clients,
    progress,
    run_benchmark,
    timed,
)
from benchmarks.http_load import get_request, run_load
from benchmarks.mix import Endpoint
from benchmarks.window_classes import ClassWindows
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


def _read(body: Any) -> dict[str, int]:
    return {r["country"]: r["views"] for r in body["data"]}


def _answer(base: str, token: str, ask: Ask) -> dict[str, int]:
    return _read(httpx.get(base + _target(ask), headers={"Authorization": f"apikey {token}"},
                           timeout=60).json())


COUNTRIES = Endpoint("countries", "/streaming/statistics/countries?date_from=…&date_to=…",
                     _target, lambda storage, ask: raw_answer(storage, ask)[0], _read)


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


@dataclass(frozen=True)
class Plan:
    """The cold, warm and repeated modes' windows, made before any API process starts (the
    embedded database is opened by one process at a time), with the answers they check."""
    base: dict[tuple[str, str, str], Ask]  # (client, window, shape) -> the cell's first window
    cold: list[dict[tuple[str, str, str], Ask]]
    warm: dict[tuple[tuple[str, str, str], int], list[Ask]]
    others: list[Ask]  # other clients' windows that warm each cold process up
    checks: dict[Ask, dict[str, int]]
    raw_ms: dict[tuple[str, str, str], float]


def plan(storage: Storage, args: argparse.Namespace, clients: dict[str, int],
         windows: Windows) -> Plan:
    base = {(who, w, s): windows.new(c, days, s) for who, c in clients.items()
            for w, days in DAYS.items() for s in SHAPES}
    cold = [{key: windows.new(ask.client, DAYS[key[1]], key[2]) for key, ask in base.items()}
            for _ in range(args.cold_runs if "cold" in args.modes else 0)]
    checks: dict[Ask, dict[str, int]] = {}
    raw_ms = {}
    for key, ask in base.items():
        progress(f"player_events baseline: {key}")
        checks[ask], raw_ms[key] = raw_answer(storage, ask, args.raw_runs)
    for run in cold:
        for ask in run.values():
            checks[ask] = raw_answer(storage, ask)[0]
    # New windows for each concurrency: none repeats one asked before.
    warm = {(key, concurrency): [windows.near(ask) for _ in range(args.requests)]
            for key, ask in base.items() for concurrency in (1, 8) if "warm" in args.modes}
    for asks in warm.values():
        for ask in asks[:args.checks]:
            checks[ask] = raw_answer(storage, ask)[0]
    others = [windows.new(int(c), 31, "edges") for (c,) in storage.query(
        "SELECT DISTINCT client_id FROM views_by_country_daily WHERE client_id NOT IN "
        "{ids:Array(UInt32)} LIMIT {n:UInt32}",
        {"ids": str(list(clients.values())), "n": args.cold_warmup * len(cold) * 6})]
    return Plan(base, cold, warm, others, checks, raw_ms)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        clients = pick_clients(storage, rng)
        windows = Windows.of(storage, rng)
        floor = Floor(storage, clients["median"], windows.first, args.floor_runs)
        cells_plan = (plan(storage, args, clients, windows)
                      if {"cold", "warm", "repeated"} & set(args.modes) else None)
        mixed = (mix.plan(storage, args, clients, [COUNTRIES], ClassWindows(windows))
                 if {"mix", "settle"} & set(args.modes) else None)
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    result: dict[str, Any] = {"clients": clients, "cells": [], "throughput": [], "checked": 0,
                              "mismatches": []}
    if cells_plan is not None:
        modes = _Cells(args, keys, clients, cells_plan, floor, result)
        if cells_plan.cold:
            modes.cold()
        if {"warm", "repeated"} & set(args.modes):
            result["throughput"] = modes.warm(windows)
    if mixed is not None:
        session = mix.Session(mixed, args, keys, {
            "Authorization": f"apikey {create_key(keys, mixed.client)[1]}",
            "Accept-Encoding": "gzip"}, result["mismatches"])
        if "mix" in args.modes:
            result["mix"] = mix.measure(session)
        if "settle" in args.modes:
            result["settle"] = settle.measure(session)
        result.update(checked=result["checked"] + session.checked)
    floor.again(args.data_dir)
    if cells_plan is not None:
        complete(result["cells"], floor.ms, cells_plan.raw_ms, ("client", "window", "shape"),
                 clients)
    return {**floor.summary(), **result}


class _Cells:
    """The cold, warm and repeated modes (those asked), into a result's cells."""

    def __init__(self, args: argparse.Namespace, keys: Path, clients: dict[str, int],
                 run: Plan, floor: Floor, result: dict[str, Any]) -> None:
        self.args, self.keys, self.run, self.floor = args, keys, run, floor
        self.tokens = {c: create_key(keys, c)[1]
                       for c in {*clients.values(), *(a.client for a in run.others)}}
        self.headers = {c: {"Authorization": f"apikey {t}"} for c, t in self.tokens.items()}
        self.cells: list[dict[str, Any]] = result["cells"]
        self.mismatches: list[str] = result["mismatches"]
        result["checked"] += len(run.checks)

    def check(self, url: str, ask: Ask) -> None:
        if ask in self.run.checks and (_answer(url, self.tokens[ask.client], ask)
                                       != self.run.checks[ask]):
            self.mismatches.append(_target(ask))

    def cold(self) -> None:
        args, run, others = self.args, self.run, list(self.run.others)
        cold_ms: dict[tuple[str, str, str], list[float]] = {key: [] for key in run.base}
        for number, cold in enumerate(run.cold):
            # A process per window and shape, so that each cold request is its client's first.
            for window, shape in ((w, sh) for w in DAYS for sh in SHAPES):
                with api_process(args, self.keys) as (url, port):
                    for ask in others[:args.cold_warmup]:
                        _settle(url, self.tokens[ask.client], ask)
                    del others[:args.cold_warmup]
                    for key, ask in cold.items():
                        if key[1:] != (window, shape):
                            continue
                        # Timed like the other modes (a bare keep-alive connection): a new
                        # httpx client per request would add its own ~20 ms of setup to each.
                        load = asyncio.run(run_load("127.0.0.1", port, [get_request(
                            "127.0.0.1", port, _target(ask), self.headers[ask.client])],
                            concurrency=1, total=1))
                        cold_ms[key] += load.latencies_ms
                        if set(load.statuses) != {200}:
                            self.mismatches.append(f"cold {_target(ask)}: statuses "
                                                   f"{load.statuses}")
                        self.check(url, ask)
                        # The next client's first request on an idle process, not beside this
                        # one's background loads.
                        _settle(url, self.tokens[ask.client], ask)
            progress(f"cold: run {number + 1} of {len(run.cold)} done")
        for key, latencies in cold_ms.items():
            self.cells.append(cell("cold", _labels(key), 1, latencies, self.floor.ms))

    def warm(self, windows: Windows) -> list[dict[str, Any]]:
        """The warm and repeated cells (those asked), then the throughput of new windows."""
        args, run, floor = self.args, self.run, self.floor.ms
        with api_process(args, self.keys) as (url, port):
            for key, ask in run.base.items():
                header = self.headers[ask.client]
                _settle(url, self.tokens[ask.client], ask)  # loads what the warm windows reuse
                self.check(url, ask)
                for concurrency in (1, 8) if run.warm else ():
                    requests = [get_request("127.0.0.1", port, _target(a), header)
                                for a in run.warm[key, concurrency]]
                    self.cells.append(load_cell("warm", _labels(key), port, requests,
                                                concurrency, len(requests), floor,
                                                self.mismatches))
                for other in run.warm.get((key, 1), [])[:args.checks]:
                    self.check(url, other)
                for concurrency in (1, 8) if "repeated" in args.modes else ():
                    requests = [get_request("127.0.0.1", port, _target(ask), header)]
                    self.cells.append(load_cell("repeated", _labels(key), port, requests,
                                                concurrency, args.requests, floor,
                                                self.mismatches))
            if not run.warm:
                return []
            throughput = []
            key = ("median", "31d", "edges")
            for concurrency in (1, 8, 32):
                requests = [get_request("127.0.0.1", port, _target(windows.near(run.base[key])),
                                        self.headers[run.base[key].client])
                            for _ in range(args.requests)]
                load = asyncio.run(run_load("127.0.0.1", port, requests,
                                            concurrency=concurrency, total=len(requests)))
                throughput.append({"concurrency": concurrency, "rps": load.per_second,
                                   "p50_ms": load.percentile(50), "p99_ms": load.percentile(99)})
                progress(f"throughput {key} warm c{concurrency}: {load.per_second:.0f} req/s")
        return throughput


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, checks=3, raw_runs=3, seed=11)
    parser.add_argument("--requests", type=int, default=200,
                        help="measured requests per warm and repeated cell (200)")
    parser.add_argument("--cold-runs", type=int, default=5,
                        help="cold requests per cell, each the first of its client on a fresh "
                             "API process (5)")
    mix.add_options(parser)
    return run_benchmark("query_latency", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
