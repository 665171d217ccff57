"""What the query benchmarks share (query_latency for countries, statistics_latency for the
family): random windows over the generated data's two years, the clients they ask for, the
engine floor F, a timed `viewstats api` process and one measured cell."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.http_load import percentile, run_load
from benchmarks.record import write_result
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage
from viewstats.devtools.processes import serving

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DAYS = {"1d": 1, "31d": 31, "365d": 365}
SHAPES = ("aligned", "edges")
MODES = ("cold", "warm", "repeated", "mix", "settle")
FLOOR_SQL = """SELECT views FROM views_by_country_daily
WHERE client_id = {client:UInt32} AND day = {day:Date} LIMIT 1"""


@dataclass(frozen=True)
class Ask:
    """One question: a client's window [start_ms, end_ms) as the API's date_from/date_to, as
    dates when `aligned`, else as date-times written at the UTC offset `zone_minutes`."""
    client: int
    start_ms: int
    end_ms: int
    aligned: bool
    zone_minutes: int = 0

    @property
    def window_query(self) -> str:
        if self.aligned:
            first, last = iso(self.start_ms)[:10], iso(self.end_ms - DAY_MS)[:10]
            return f"date_from={first}&date_to={last}"
        # date_to is inclusive to the end of its precision: whole seconds when both ends are
        # (as a dashboard writes `…T23:59:59+05:30`), else its millisecond.
        spec = ("seconds" if self.start_ms % 1000 == 0 and self.end_ms % 1000 == 0
                else "milliseconds")
        last_ms = self.end_ms - (1000 if spec == "seconds" else 1)
        # quoted: a `+` offset would read as a space
        return (f"date_from={quote(iso(self.start_ms, self.zone_minutes, spec), safe=':')}"
                f"&date_to={quote(iso(last_ms, self.zone_minutes, spec), safe=':')}")


def iso(ms: int, zone_minutes: int = 0, timespec: str = "milliseconds") -> str:
    """`ms` as an ISO 8601 date-time at the UTC offset `zone_minutes` (`Z` for UTC)."""
    zone = timezone(timedelta(minutes=zone_minutes)) if zone_minutes else UTC
    return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec=timespec).replace(
        "+00:00", "Z")


class Windows:
    """Random windows inside the data's two years; an `edges` window's ends fall on whole
    `edge_unit_ms` and are written at the UTC offset `edge_zone` (minutes)."""

    def __init__(self, rng: random.Random, first_day_ms: int, end_day_ms: int,
                 edge_unit_ms: int = 1, edge_zone: int = 0) -> None:
        self.rng, self.first, self.end = rng, first_day_ms, end_day_ms
        self.edge_unit, self.edge_zone = edge_unit_ms, edge_zone

    @classmethod
    def of(cls, storage: Storage, rng: random.Random, edge_unit_ms: int = 1,
           edge_zone: int = 0) -> Windows:
        """Windows over the days the daily rollup holds, but its last (it may be partial)."""
        first, last = storage.query("SELECT toUnixTimestamp(toDateTime(min(day), 'UTC')) * 1000,"
                                    " toUnixTimestamp(toDateTime(max(day), 'UTC')) * 1000"
                                    " FROM views_by_country_daily")[0]
        return cls(rng, int(first), int(last) - DAY_MS, edge_unit_ms, edge_zone)

    def new(self, client: int, days: int, shape: str) -> Ask:
        last_start = (self.end - self.first) // DAY_MS - days
        start = self.first + self.rng.randrange(max(last_start, 1)) * DAY_MS
        if shape == "aligned":
            return Ask(client, start, start + days * DAY_MS, True)
        unit = self.edge_unit
        start += self.rng.randrange(DAY_MS - HOUR_MS) // unit * unit  # ends inside hours
        end = (start + days * DAY_MS - self.rng.randrange(HOUR_MS)) // unit * unit
        return Ask(client, start, end, False, self.edge_zone)

    def near(self, ask: Ask) -> Ask:
        """A new window over what `ask` loaded: aligned anywhere, or its ends moved by random
        milliseconds inside their hours."""
        if ask.aligned:
            return self.new(ask.client, (ask.end_ms - ask.start_ms) // DAY_MS, "aligned")
        start = ask.start_ms // HOUR_MS * HOUR_MS + self.rng.randrange(1, HOUR_MS)
        end = ask.end_ms // HOUR_MS * HOUR_MS + self.rng.randrange(1, HOUR_MS)
        return Ask(ask.client, start, end, False)


def add_options(parser: argparse.ArgumentParser, *, checks: int, raw_runs: int,
                seed: int) -> None:
    """The options both query benchmarks take, with each one's defaults."""
    parser.add_argument("--data-dir", type=Path, default=Path("data-bench"),
                        help="embedded data dir made by benchmarks.generate")
    parser.add_argument("--cold-warmup", type=int, default=5,
                        help="requests for other clients before the cold ones (5)")
    parser.add_argument("--checks", type=int, default=checks,
                        help=f"warm answers per cell compared with player_events ({checks})")
    parser.add_argument("--raw-runs", type=int, default=raw_runs,
                        help=f"baseline runs per cell ({raw_runs})")
    parser.add_argument("--floor-runs", type=int, default=300, help="point reads for F (300)")
    parser.add_argument("--seed", type=int, default=seed, help=f"random windows' seed ({seed})")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        metavar="MODE", help=f"measure only these ({', '.join(MODES)}; all)")
    parser.add_argument("--api-source", type=Path, default=None,
                        help="run `viewstats api` from this checkout (started in its folder)")
    parser.add_argument("--api-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the API process (e.g. QUERY_QUEUE_DEPTH=64); "
                             "repeat for more")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")


def run_benchmark(benchmark: str, measure: Callable[[argparse.Namespace], dict[str, Any]],
                  args: argparse.Namespace) -> int:
    """Measure, and write the result when asked, with how long the run took and the machine's
    load average (1, 5, 15 min) before and after it: the machine is shared, and a busy one
    moves every figure. Exit 1 when an answer differed from player_events."""
    load_before, started = os.getloadavg(), time.monotonic()
    result = measure(args)
    result.update(run_seconds=time.monotonic() - started,
                  load_average={"start": load_before, "end": os.getloadavg()},
                  api_source=str(args.api_source) if args.api_source else "this checkout",
                  api_env=args.api_env)
    progress(f"done in {result['run_seconds']:,.0f} s; load average {load_before[0]:.2f} at "
             f"the start, {result['load_average']['end'][0]:.2f} at the end")
    if args.out:
        write_result(args.out, {"benchmark": benchmark, **result})
    if result["mismatches"]:
        print(f"{len(result['mismatches'])} answer(s) differ from player_events or failed: "
              f"{result['mismatches'][:5]}", file=sys.stderr)
        return 1
    return 0


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pick_clients(storage: Storage, rng: random.Random) -> dict[str, int]:
    """The heaviest client, the median one and a random one of the lighter half, by views."""
    rows = storage.query("SELECT client_id, sum(views) AS v FROM views_by_country_daily "
                         "GROUP BY client_id ORDER BY v DESC, client_id")
    if not rows:
        raise SystemExit("no views in the database: run benchmarks.generate first")
    tail = rows[len(rows) // 2 + rng.randrange(max(len(rows) // 2, 1))]
    return {"heaviest": int(rows[0][0]), "median": int(rows[len(rows) // 2][0]),
            "tail": int(tail[0])}


def timed(storage: Storage, sql: str, params: dict[str, str | int], runs: int
          ) -> tuple[list[Any], list[float]]:
    """The rows of `sql` and how long each of `runs` runs took, in ms."""
    times, rows = [], []
    for _ in range(runs):
        started = time.perf_counter()
        rows = storage.query(sql, params)
        times.append((time.perf_counter() - started) * 1000)
    return rows, times


class Floor:
    """The engine floor F: a one-row point read through the storage layer, measured before and
    after the API processes (the engine's merges and the machine's load move it); the multiples
    use the median of both measurements."""

    def __init__(self, storage: Storage, client: int, first_day_ms: int, runs: int) -> None:
        self.params: dict[str, str | int] = {"client": client, "day": iso(first_day_ms)[:10]}
        self.runs = runs
        self.times = timed(storage, FLOOR_SQL, self.params, runs)[1]
        progress(f"engine floor F: median {self.ms:.2f} ms over {runs} point reads")

    @property
    def ms(self) -> float:
        return statistics.median(self.times)

    def again(self, data_dir: Path) -> None:
        """Measure F again, once the API processes have let go of the embedded database."""
        storage = open_storage(Settings.from_env(data_dir=data_dir))
        try:
            self.times += timed(storage, FLOOR_SQL, self.params, self.runs)[1]
        finally:
            storage.close()
        progress(f"engine floor F: median {statistics.median(self.times[:self.runs]):.2f} ms "
                 f"before, {statistics.median(self.times[self.runs:]):.2f} ms after")

    def summary(self) -> dict[str, float]:
        return {"floor_ms": self.ms, "floor_p99_ms": percentile(self.times, 99),
                "floor_before_ms": statistics.median(self.times[:self.runs]),
                "floor_after_ms": statistics.median(self.times[self.runs:])}


@contextmanager
def api_process(args: argparse.Namespace, keys: Path) -> Iterator[tuple[str, int]]:
    """A `viewstats api` on the benchmark's data (from `--api-source` when given): its base URL
    and port."""
    settings = dict(setting.split("=", 1) for setting in args.api_env)
    with serving("api", args.data_dir.resolve(),
                 env={**settings, "API_KEYS_FILE": str(keys.resolve())},
                 cwd=args.api_source) as (base, _):
        yield base, int(base.rsplit(":", 1)[1])


def cell(mode: str, labels: dict[str, str], concurrency: int, latencies: list[float],
         floor: float, seconds: float | None = None) -> dict[str, Any]:
    """One measured cell: its labels (client, window, shape, …), p50 and p99 in ms and in F."""
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    progress(f"{mode:>8} {' '.join(f'{v:>8}' for v in labels.values())} c{concurrency:<2}: "
             f"p50 {p50:8.2f} ms ({p50 / floor:5.1f} F)  p99 {p99:8.2f} ms")
    return {"mode": mode, **labels, "concurrency": concurrency, "requests": len(latencies),
            "p50_ms": p50, "p99_ms": p99, "p50_floors": p50 / floor, "p99_floors": p99 / floor,
            "rps": len(latencies) / seconds if seconds else None}


def complete(cells: list[dict[str, Any]], floor: float, raw_ms: dict[Any, float],
             labels: tuple[str, ...], clients: dict[str, int]) -> None:
    """Each cell in multiples of the final F (the median of before and after), with its
    player_events baseline (keyed by the values of `labels`) and the speed-up over it."""
    for found in cells:
        raw = raw_ms[tuple(found[name] for name in labels)]
        found.update(p50_floors=found["p50_ms"] / floor, p99_floors=found["p99_ms"] / floor,
                     raw_ms=raw, speedup=raw / found["p50_ms"],
                     client_id=clients[found["client"]])


def load_cell(mode: str, labels: dict[str, str], port: int, requests: list[bytes],
              concurrency: int, total: int, floor: float, failures: list[str]) -> dict[str, Any]:
    """Send `total` of `requests` (round and round) at `concurrency` and measure them as a cell;
    an answer other than 200 goes to `failures`."""
    load = asyncio.run(run_load("127.0.0.1", port, requests, concurrency=concurrency,
                                total=total))
    if set(load.statuses) != {200}:
        failures.append(f"{mode} {tuple(labels.values())} c{concurrency}: "
                        f"statuses {load.statuses}")
    return cell(mode, labels, concurrency, load.latencies_ms, floor, load.seconds)
