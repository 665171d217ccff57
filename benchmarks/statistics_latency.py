r"""Query latency of the statistics family over HTTP (views, hosts, popular, and countries with
a filter; architecture §15), in the modes benchmarks.query_latency measures countries in.

    python -m benchmarks.statistics_latency --data-dir data-bench \
        --out benchmarks/results/statistics_latency.json
    python -m benchmarks.statistics_latency --data-dir data-bench \
        --api-source ../viewstats-previous \
        --out benchmarks/results/statistics_latency_previous.json
    python -m benchmarks.statistics_latency --data-dir data-bench --modes mix settle \
        --mix-seconds 5
    python -m benchmarks.statistics_latency --data-dir data-bench --modes cold repeated \
        --who heaviest --windows 31d 365d --edge-unit-ms 60000 --edge-zone 330 \
        --queries views uniqs uniqs-by-date browsers systems regions embeds \
        --out benchmarks/results/statistics_latency_audience.json

Cells: each query of QUERIES x {heaviest, median, a random tail client} x {1, 31, 365 days} x
{day-aligned, partial-hour edges}, in three modes:
- cold: a fresh `viewstats api` process per window and shape (after a few requests for other
  clients), asked each query once per client, each on a window never asked before;
- warm: one process that has answered the cell's first window, then new windows over the same
  hours (or new day-aligned windows) at concurrency 1 and 8; no two requests are alike;
- repeated: on the same process, the cell's first window again and again, at concurrency 1
  and 8 (`--requests` times each).
Then, for one client (`--mix-client`), the mix of issue 20 over MIX_QUERIES (countries, views,
views of a country, hosts, popular, countries of a host): windows never asked before in five
classes, gzip accepted, at concurrency 1, 8 and 32 once the client has been met
(benchmarks.mix), and the settle run (benchmarks.settle). Filter values are each client's most
viewed video, its top country and its top host. Every cold answer, each cell's first window,
`--checks` warm answers per cell and `--mix-checks` mix answers per class, endpoint, run and
concurrency are compared, rows in the documented order, with the same count made from
`player_events` alone, and must be equal; that count's median time over `--raw-runs` runs is
the baseline of the speed-up. Queries marked `player_events` are those the API answers from the
raw events alone (the README lists them; tests/test_benchmarks.py ties the mark to the API's
choice). `--modes` runs some of the modes only; `--api-source DIR` runs another checkout's API
on the same data (the report reads such a run saved as statistics_latency_previous.json).
`--who` and `--windows` keep some clients and window lengths only; `--edge-unit-ms` and
`--edge-zone` put the `edges` windows' ends on whole minutes (say) written in a zone whose days
start off the hour (the audience run above: minute edges at +05:30, its report section reads
statistics_latency_audience.json). The audience endpoints count as follows: `uniqs` counts
distinct viewer keys of every event (over the window, or per UTC day with `group=date`),
`browsers`, `systems`, `regions` and `embeds` rank views by their field.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)
from benchmarks.family import (
    MIX_QUERIES,
    QUERIES,
    TOP_VALUES_SQL,
    WARMUP,
    Answer,
    Query,
    api_answer,
    endpoint,
    raw_answer,
)
from benchmarks.http_load import get_request, run_load
from benchmarks.window_classes import ClassWindows
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage

CELL_MODES = {"cold", "warm", "repeated"}
WHO = ("heaviest", "median", "tail")  # benchmarks.asks.pick_clients


@dataclass(frozen=True)
class Plan:
    """The cold, warm and repeated modes' windows, made before any API process starts (the
    embedded database is opened by one process at a time), with the answers they check."""
    base: dict[tuple[str, str, str, str], Ask]  # (query, who, window, shape) -> first window
    cold: list[dict[tuple[str, str, str, str], Ask]]
    warm: dict[tuple[tuple[str, str, str, str], int], list[Ask]]
    others: list[Ask]  # other clients' windows that warm each cold process up
    checks: dict[tuple[str, Ask], Answer]
    raw_ms: dict[tuple[str, str, str, str], float]


def plan(storage: Storage, args: argparse.Namespace, queries: dict[str, Query],
         clients: dict[str, int], values: dict[int, dict[str, str]], windows: Windows) -> Plan:
    base = {(q, who, w, s): windows.new(c, DAYS[w], s) for q in queries
            for who, c in clients.items() if who in args.who for w in args.windows
            for s in SHAPES}
    cold = [{key: windows.new(ask.client, DAYS[key[2]], key[3]) for key, ask in base.items()}
            for _ in range(args.cold_runs if "cold" in args.modes else 0)]
    warm = {(key, concurrency): [windows.near(ask) for _ in range(args.requests)]
            for key, ask in base.items() for concurrency in (1, 8) if "warm" in args.modes}
    checks: dict[tuple[str, Ask], Answer] = {}
    raw_ms = {}
    for number, (key, ask) in enumerate(base.items()):
        if number % 30 == 0:
            progress(f"player_events baselines and checks: {number} of {len(base)} cells")
        query, client_values = queries[key[0]], values[ask.client]
        checks[key[0], ask], raw_ms[key] = raw_answer(storage, query, ask, client_values,
                                                      args.raw_runs)
        extra = [run[key] for run in cold] + warm.get((key, 1), [])[:args.checks]
        for other in extra:
            checks[key[0], other] = raw_answer(storage, query, other, client_values)[0]
    others = [windows.new(int(c), 31, "edges") for (c,) in storage.query(
        "SELECT DISTINCT client_id FROM views_by_country_daily WHERE client_id NOT IN "
        "{ids:Array(UInt32)} LIMIT {n:UInt32}",
        {"ids": str(list(clients.values())),
         "n": args.cold_warmup * len(cold) * len(args.windows) * len(SHAPES)})]
    return Plan(base, cold, warm, others, checks, raw_ms)


class _Cells:
    """The cold, warm and repeated modes (those asked), into a result's cells."""

    def __init__(self, args: argparse.Namespace, keys: Path, queries: dict[str, Query],
                 values: dict[int, dict[str, str]], run: Plan, floor: Floor,
                 result: dict[str, Any]) -> None:
        self.args, self.keys, self.queries, self.values = args, keys, queries, values
        self.run, self.floor = run, floor
        self.tokens = {c: create_key(keys, c)[1]
                       for c in {*values, *(a.client for a in run.others)}}
        self.cells: list[dict[str, Any]] = result["cells"]
        self.mismatches: list[str] = result["mismatches"]

    def ask_once(self, url: str, port: int, query: Query, ask: Ask) -> list[float]:
        values, token = self.values.get(ask.client, {}), self.tokens[ask.client]
        target = query.target(ask, values)
        load = asyncio.run(run_load("127.0.0.1", port, [get_request(
            "127.0.0.1", port, target, {"Authorization": f"apikey {token}"})],
            concurrency=1, total=1))
        if set(load.statuses) != {200}:
            self.mismatches.append(f"{target}: statuses {load.statuses}")
        elif (query.name, ask) in self.run.checks:
            answer = api_answer(url, token, query, ask, values)
            if answer != self.run.checks[query.name, ask]:
                self.mismatches.append(f"{target} (client {ask.client})" + (
                    f": status {answer}" if isinstance(answer, int) else ""))
        return load.latencies_ms

    def cold(self) -> None:
        args, run, others = self.args, self.run, list(self.run.others)
        cold_ms: dict[tuple[str, str, str, str], list[float]] = {key: [] for key in run.base}
        for number, cold in enumerate(run.cold):
            for window, shape in ((w, sh) for w in args.windows for sh in SHAPES):
                with api_process(args, self.keys) as (url, port):
                    for other in others[:args.cold_warmup]:
                        self.ask_once(url, port, WARMUP, other)
                    del others[:args.cold_warmup]
                    for key, ask in cold.items():
                        if key[2:] == (window, shape):
                            cold_ms[key] += self.ask_once(url, port, self.queries[key[0]], ask)
            progress(f"cold: run {number + 1} of {len(run.cold)} done")
        for key, latencies in cold_ms.items():
            self.cells.append(cell("cold", _labels(key), 1, latencies, self.floor.ms))

    def warm(self) -> None:
        """The warm and repeated cells (those asked), each cell on one process."""
        args, run, floor = self.args, self.run, self.floor.ms
        with api_process(args, self.keys) as (url, port):
            for key, ask in run.base.items():
                query = self.queries[key[0]]
                self.ask_once(url, port, query, ask)  # checked; what follows is warm
                header = {"Authorization": f"apikey {self.tokens[ask.client]}"}
                for concurrency in (1, 8) if run.warm else ():
                    requests = [get_request("127.0.0.1", port,
                                            query.target(a, self.values[a.client]), header)
                                for a in run.warm[key, concurrency]]
                    self.cells.append(load_cell("warm", _labels(key), port, requests,
                                                concurrency, len(requests), floor,
                                                self.mismatches))
                for other in run.warm.get((key, 1), [])[:args.checks]:
                    self.ask_once(url, port, query, other)
                for concurrency in (1, 8) if "repeated" in args.modes else ():
                    requests = [get_request("127.0.0.1", port,
                                            query.target(ask, self.values[ask.client]), header)]
                    self.cells.append(load_cell("repeated", _labels(key), port, requests,
                                                concurrency, args.requests, floor,
                                                self.mismatches))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    queries = {q.name: q for q in QUERIES if not args.queries or q.name in args.queries}
    modes = set(args.modes)
    rng = random.Random(args.seed)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        clients = pick_clients(storage, rng)
        values = {c: {name: str(storage.query(sql, {"client": c})[0][0])
                      for name, sql in TOP_VALUES_SQL.items()} for c in clients.values()}
        windows = Windows.of(storage, rng, args.edge_unit_ms, args.edge_zone)
        run = plan(storage, args, queries, clients, values, windows) if CELL_MODES & modes else None
        mixed = (mix.plan(storage, args, clients,
                          [endpoint(q, values[clients[args.mix_client]]) for q in MIX_QUERIES],
                          ClassWindows(windows))
                 if {"mix", "settle"} & modes else None)
        floor = Floor(storage, clients["median"], windows.first, args.floor_runs)
        events = int(storage.query(
            "SELECT sum(rows) FROM system.parts WHERE active AND database = currentDatabase() "
            "AND table = 'player_events'")[0][0] or 0)
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    result: dict[str, Any] = {"clients": clients, "cells": [], "mismatches": []}
    if run is not None:
        modes_run = _Cells(args, keys, queries, values, run, floor, result)
        if run.cold:
            modes_run.cold()
        if {"warm", "repeated"} & modes:
            modes_run.warm()
    checked = list((run.checks if run else {}).values())
    if mixed is not None:
        session = mix.Session(mixed, args, keys, {
            "Authorization": f"apikey {create_key(keys, mixed.client)[1]}",
            "Accept-Encoding": "gzip"}, result["mismatches"])
        if "mix" in modes:
            result["mix"] = mix.measure(session)
        if "settle" in modes:
            result["settle"] = settle.measure(session)
    floor.again(args.data_dir)
    if run is not None:
        complete(result["cells"], floor.ms, run.raw_ms, ("query", "client", "window", "shape"),
                 clients)
    for found in result["cells"]:
        found["reads"] = queries[found["query"]].reads
    return {**floor.summary(), **result, "events": events,
            "values": {str(c): v for c, v in values.items()},
            "queries": [{"name": q.name, "target": q.template, "reads": q.reads}
                        for q in queries.values()],
            "checked": len(checked) + (session.checked if mixed else 0),
            # An empty answer checks little: say how many had rows.
            "checked_nonempty": sum(1 for answer in checked if answer) + (
                session.checked_nonempty if mixed else 0)}


def _labels(key: tuple[str, str, str, str]) -> dict[str, str]:
    return dict(zip(("query", "client", "window", "shape"), key, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, checks=2, raw_runs=3, seed=12)
    parser.add_argument("--queries", nargs="*", default=None, metavar="NAME",
                        choices=[q.name for q in QUERIES],
                        help="measure only these queries (default: all of "
                             f"{', '.join(q.name for q in QUERIES)})")
    parser.add_argument("--requests", type=int, default=40,
                        help="measured requests per warm and repeated cell and concurrency (40)")
    parser.add_argument("--cold-runs", type=int, default=3,
                        help="cold requests per cell, each on a fresh API process (3)")
    parser.add_argument("--who", nargs="+", choices=WHO, default=list(WHO),
                        help="measure only these clients (default: all of " + ", ".join(WHO)
                             + ")")
    parser.add_argument("--windows", nargs="+", choices=list(DAYS), default=list(DAYS),
                        help=f"measure only these window lengths (default: {', '.join(DAYS)})")
    parser.add_argument("--edge-unit-ms", type=int, default=1,
                        help="the `edges` windows' ends fall on whole units of this many ms "
                             "(1; 60000: whole minutes)")
    parser.add_argument("--edge-zone", type=int, default=0,
                        help="the UTC offset in minutes the `edges` windows are written at "
                             "(0; 330: +05:30)")
    mix.add_options(parser)
    return run_benchmark("statistics_latency", measure, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
