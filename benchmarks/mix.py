"""The mix mode both query benchmarks share (issue 20): one client (the heaviest by default)
asked windows never asked before, of the five classes of benchmarks.window_classes, on every
endpoint the benchmark measures in turn, with `Accept-Encoding: gzip` as a gateway sends.

On a fresh `viewstats api` process the client is first met: one request per endpoint, then
`--meet-seconds` idle. Then, at concurrency 1, 8 and 32, one run per class (that class's
windows only) and one run of the whole mix (the classes in equal numbers, shuffled), each for
`--mix-seconds` or until its `--mix-requests` windows are sent. Each run reports p50, p99 and
answers/s per class and endpoint; the first `--mix-checks` answers of every class, endpoint,
run and concurrency are kept and compared with the same count from `player_events`.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.asks import Ask, api_process, progress
from benchmarks.http_load import Load, get_request, percentile, run_load
from benchmarks.window_classes import CLASSES, ZONES, ClassWindows
from viewstats.core.storage import Storage

CONCURRENCY = (1, 8, 32)
WHOLE = "mix"  # the run of every class, and the cells over every class or endpoint: "all"


@dataclass(frozen=True)
class Endpoint:
    """One request of the mix, and how its answer is checked."""
    name: str
    template: str  # the request, for the report
    target: Callable[[Ask], str]  # path and query string
    expected: Callable[[Storage, Ask], object]  # the answer counted from player_events alone
    read: Callable[[Any], object]  # the API's JSON answer, as `expected` gives it
    reads: str = "rollups"  # or "player_events": what the API answers it from


class Item(NamedTuple):
    window_class: str
    endpoint: str
    ask: Ask


@dataclass(frozen=True)
class MixPlan:
    """Every request of the mix and settle modes, made while the benchmark holds the embedded
    database, with the answers it checks."""
    who: str
    client: int
    endpoints: dict[str, Endpoint]
    meet: list[Item]  # one per endpoint: the client is met before measuring
    runs: dict[tuple[str, int], list[Item]]  # (class or WHOLE, concurrency) -> its requests
    settle: list[Item]
    checks: dict[tuple[str, Ask], object]


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mix-client", choices=("heaviest", "median", "tail"),
                        default="heaviest", help="the client the mix and settle modes ask for "
                                                 "(heaviest)")
    parser.add_argument("--mix-seconds", type=float, default=10.0,
                        help="seconds per mix run, per class and concurrency (10)")
    parser.add_argument("--mix-requests", type=int, default=10_000,
                        help="windows made per mix run: a run ends early when all are sent "
                             "(10000)")
    parser.add_argument("--mix-checks", type=int, default=1,
                        help="answers checked per class, endpoint, run and concurrency (1)")
    parser.add_argument("--meet-seconds", type=float, default=5.0,
                        help="idle seconds after meeting the client, before the mix (5)")
    parser.add_argument("--settle-seconds", type=float, default=20.0,
                        help="length of the settle run, concurrency 8 (20)")
    parser.add_argument("--settle-requests", type=int, default=30_000,
                        help="windows made for the settle run (30000)")


def in_turn(endpoints: list[str], classes: list[str], count: int,
             rng: random.Random) -> list[tuple[str, str]]:
    """`count` (class, endpoint) pairs: the endpoints in turn, each given every class equally
    often (to one), in a shuffled order."""
    rounds = -(-count // len(endpoints))
    order = {}
    for endpoint in endpoints:
        order[endpoint] = (classes * -(-rounds // len(classes)))[:rounds]
        rng.shuffle(order[endpoint])
    return [(order[e][i], e) for i in range(rounds) for e in endpoints][:count]


def plan(storage: Storage, args: argparse.Namespace, clients: dict[str, int],
         endpoints: list[Endpoint], windows: ClassWindows) -> MixPlan:
    client, rng = clients[args.mix_client], windows.windows.rng
    names = [e.name for e in endpoints]

    def items(classes: list[str], count: int) -> list[Item]:
        return [Item(k, e, windows.new(client, k)) for k, e in in_turn(names, classes, count,
                                                                         rng)]

    runs = {(run, c): items([run] if run != WHOLE else list(CLASSES), args.mix_requests)
            for c in CONCURRENCY for run in (*CLASSES, WHOLE) if "mix" in args.modes}
    settle = items(list(CLASSES), args.settle_requests) if "settle" in args.modes else []
    by_name = {e.name: e for e in endpoints}
    checks: dict[tuple[str, Ask], object] = {}
    for number, listed in enumerate([*runs.values(), settle]):
        progress(f"mix: player_events answers to check, run {number + 1} of {len(runs) + 1}")
        for item in (listed[i] for i in checked(listed, args.mix_checks)):
            checks[item.endpoint, item.ask] = by_name[item.endpoint].expected(storage, item.ask)
    return MixPlan(args.mix_client, client, by_name, items(["utc-days"], len(names)), runs,
                   settle, checks)


def checked(items: list[Item], per_pair: int) -> frozenset[int]:
    """The numbers of the first `per_pair` items of each class and endpoint."""
    seen: dict[tuple[str, str], int] = {}
    numbers = []
    for number, item in enumerate(items):
        pair = item.window_class, item.endpoint
        if seen.get(pair, 0) < per_pair:
            seen[pair] = seen.get(pair, 0) + 1
            numbers.append(number)
    return frozenset(numbers)


@dataclass
class Session:
    """What the mix and settle runs of one benchmark share: its plan, how to ask, what failed."""
    plan: MixPlan
    args: argparse.Namespace
    keys: Path  # the API keys file
    headers: dict[str, str]
    mismatches: list[str]
    checked: int = 0
    checked_nonempty: int = 0

    def requests(self, port: int, items: list[Item]) -> list[bytes]:
        return [get_request("127.0.0.1", port, self.plan.endpoints[i.endpoint].target(i.ask),
                            self.headers) for i in items]

    def meet(self, port: int) -> None:
        """One request per endpoint, as a dashboard's first page."""
        load = asyncio.run(run_load("127.0.0.1", port, self.requests(port, self.plan.meet),
                                    concurrency=1, total=len(self.plan.meet)))
        self.failed("meet", load)

    def failed(self, name: str, load: Load) -> None:
        """Note a run's answers other than 200 and 429 (see _cells)."""
        if set(load.statuses) - {200, 429}:
            self.mismatches.append(f"{name}: statuses {load.statuses}")

    def check(self, items: list[Item], load: Load) -> None:
        """Compare the kept answers with their counts from player_events."""
        for number, (head, body) in sorted(load.kept.items()):
            item = items[number % len(items)]
            expected = self.plan.checks[item.endpoint, item.ask]
            target = self.plan.endpoints[item.endpoint].target(item.ask)
            if not head.startswith(b"http/1.1 200"):
                continue  # counted by failed()
            if b"\r\ncontent-encoding: gzip" in head:
                body = gzip.decompress(body)
            self.checked += 1
            self.checked_nonempty += bool(expected)
            if self.plan.endpoints[item.endpoint].read(json.loads(body)) != expected:
                self.mismatches.append(f"mix {item.window_class} {target}")


def _cells(run: str, concurrency: int, items: list[Item], load: Load) -> list[dict[str, Any]]:
    """The run's cells: its answers grouped by class and endpoint, and over each and both.
    Latencies and answers/s count the 200s; `refused` counts the 429s of the client's query
    budget (a documented answer: more of one client's requests wait than its queue holds),
    `failed` any other status."""
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for answer, latency in zip(load.answers, load.latencies_ms, strict=True):
        item = items[answer.number % len(items)]
        for key in ((item.window_class, item.endpoint), (item.window_class, "all"),
                    ("all", item.endpoint), ("all", "all")):
            if key[0] != "all" or run == WHOLE:  # a class's run: its class is the whole
                groups.setdefault(key, []).append((answer.status, latency))
    cells = []
    for (window_class, endpoint), answers in sorted(groups.items()):
        latencies = [ms for status, ms in answers if status == 200]
        cells.append({"run": run, "class": window_class, "endpoint": endpoint,
                      "concurrency": concurrency, "requests": len(latencies),
                      "p50_ms": percentile(latencies, 50) if latencies else None,
                      "p99_ms": percentile(latencies, 99) if latencies else None,
                      "rps": len(latencies) / load.seconds,
                      "refused": sum(status == 429 for status, _ in answers),
                      "failed": sum(status not in (200, 429) for status, _ in answers)})
    return cells


def measure(session: Session) -> dict[str, Any]:
    """The mix on a fresh API process, the client met first."""
    plan, args, checked_before = session.plan, session.args, session.checked
    cells, runs = [], []
    with api_process(args, session.keys) as (_, port):
        session.meet(port)
        time.sleep(args.meet_seconds)
        for concurrency in CONCURRENCY:
            for run in (*CLASSES, WHOLE):
                items = plan.runs[run, concurrency]
                load = asyncio.run(run_load(
                    "127.0.0.1", port, session.requests(port, items), concurrency=concurrency,
                    total=len(items), seconds=args.mix_seconds,
                    keep=checked(items, args.mix_checks)))
                session.failed(f"mix {run} c{concurrency}", load)
                session.check(items, load)
                found = _cells(run, concurrency, items, load)
                cells += found
                whole = next(c for c in found if c["endpoint"] == "all"
                             and c["class"] == ("all" if run == WHOLE else run))
                runs.append({"run": run, "concurrency": concurrency, "seconds": load.seconds,
                             "answers": len(load.latencies_ms), "made": len(items)})
                progress(f"mix {run:>12} c{concurrency:<2}: p50 {whole['p50_ms'] or 0:8.2f} ms  "
                         f"p99 {whole['p99_ms'] or 0:8.2f} ms  {whole['rps']:8,.0f} answers/s"
                         f"  {whole['refused']} refused")
    return {"who": plan.who, "client_id": plan.client, "classes": list(CLASSES),
            "zones": [f"{'-' if z < 0 else '+'}{abs(z) // 60:02d}:{abs(z) % 60:02d}"
                      for z in ZONES],
            "endpoints": [{"name": e.name, "target": e.template, "reads": e.reads}
                          for e in plan.endpoints.values()],
            "meet_seconds": args.meet_seconds, "seconds_per_run": args.mix_seconds,
            "runs": runs, "cells": cells, "checked": session.checked - checked_before}
