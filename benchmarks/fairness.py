"""Fairness: a light client's latency alone and while the heaviest client floods the API.

    python -m benchmarks.fairness --data-dir data-bench \
        --before-source ../main --out benchmarks/results/fairness.json

On the data of `benchmarks.generate`, against a `viewstats api` process: the light client (the
median client by views) asks countries for 7-day windows with minute edges, never the same
window twice, at concurrency 2, for `--seconds` alone; then for `--seconds` more while the
heaviest client sends `views?id=…&country=…` over 365 days (its most viewed video and its top
country: the API reads `player_events` for it, the most expensive request it serves) at
concurrency 16. The light client's p50/p99 and answers, and the heavy client's statuses, are
reported for both phases; last, the heavy client alone sends the same at concurrency 8 (one
client's own concurrent use, which its queue should hold without a 429). `--before-source
DIR` measures the same phases, on the same data and windows, against the API of another
checkout (e.g. the code before per-client budgets). `--env NAME=VALUE` sets the API's
settings (e.g. QUERY_CLIENT_CONCURRENCY=1).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.asks import DAY_MS, Ask, Windows, pick_clients, progress
from benchmarks.family import TOP_VALUES_SQL
from benchmarks.http_load import Load, get_request, run_load
from benchmarks.record import write_result
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import open_storage
from viewstats.devtools.processes import serving

MINUTE_MS = 60_000
LIGHT_DAYS = 7
HEAVY_DAYS = 365


def _summary(load: Load) -> dict[str, Any]:
    return {"answers": len(load.latencies_ms), "seconds": load.seconds,
            "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
            "p50_ms": load.percentile(50) if load.latencies_ms else None,
            "p99_ms": load.percentile(99) if load.latencies_ms else None}


def _light_windows(windows: Windows, client: int, count: int) -> list[Ask]:
    """`count` distinct 7-day windows whose ends fall on minutes inside hours."""
    span_minutes = (windows.end - windows.first - LIGHT_DAYS * DAY_MS) // MINUTE_MS
    starts = windows.rng.sample(range(span_minutes), count)
    return [Ask(client, windows.first + m * MINUTE_MS,
                windows.first + m * MINUTE_MS + LIGHT_DAYS * DAY_MS, False) for m in starts]


async def _phases(port: int, light: list[bytes], heavy: bytes, args: argparse.Namespace
                  ) -> dict[str, Any]:
    # Each phase asks its own half of the windows, each once: a phase that runs out of them
    # ends early (then raise --windows).
    halves = light[:len(light) // 2], light[len(light) // 2:]
    alone = await run_load("127.0.0.1", port, halves[0], concurrency=args.light_concurrency,
                           total=len(halves[0]), seconds=args.seconds)
    progress(f"  light alone: {_summary(alone)}")
    flooded, flood = await asyncio.gather(
        run_load("127.0.0.1", port, halves[1], concurrency=args.light_concurrency,
                 total=len(halves[1]), seconds=args.seconds),
        run_load("127.0.0.1", port, [heavy], concurrency=args.heavy_concurrency,
                 seconds=args.seconds))
    result: dict[str, Any] = {"light_alone": _summary(alone), "light_flooded": _summary(flooded),
                              "heavy": _summary(flood)}
    progress(f"  light flooded: {result['light_flooded']}\n  heavy: {result['heavy']}")
    # One client's own concurrent use, of the most expensive request: what its queue must hold.
    alone_heavy = await run_load("127.0.0.1", port, [heavy], concurrency=args.single_concurrency,
                                 seconds=args.seconds)
    result["heavy_alone"] = _summary(alone_heavy)
    progress(f"  heavy alone at concurrency {args.single_concurrency}: {result['heavy_alone']}")
    alone_p99, flooded_p99 = result["light_alone"]["p99_ms"], result["light_flooded"]["p99_ms"]
    result["p99_ratio"] = flooded_p99 / alone_p99 if alone_p99 and flooded_p99 else None
    return result


def _commit(checkout: Path) -> str:
    found = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or "unknown"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        clients = pick_clients(storage, rng)
        light_client, heavy_client = clients["median"], clients["heaviest"]
        values = {name: str(storage.query(sql, {"client": heavy_client})[0][0])
                  for name, sql in TOP_VALUES_SQL.items() if name in ("id", "country")}
        windows = Windows.of(storage, rng)
        heavy_ask = windows.new(heavy_client, HEAVY_DAYS, "aligned")
        light_asks = _light_windows(windows, light_client, args.windows)
        events = int(storage.query("SELECT count() FROM player_events")[0][0])
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    tokens = {c: create_key(keys, c)[1] for c in (light_client, heavy_client)}
    env = {"API_KEYS_FILE": str(keys.resolve()), **dict(e.split("=", 1) for e in args.env)}
    sides = {"after": None, **({"before": args.before_source} if args.before_source else {})}
    result: dict[str, Any] = {
        "events": events, "light_client": light_client, "heavy_client": heavy_client,
        "light_request": "/streaming/statistics/countries?date_from=…&date_to=… (7 days, "
                         "minute edges)",
        "heavy_request": f"/streaming/statistics/views?{heavy_ask.window_query}"
                         f"&id={values['id']}&country={values['country']}",
        "light_concurrency": args.light_concurrency,
        "heavy_concurrency": args.heavy_concurrency,
        "single_concurrency": args.single_concurrency, "seconds": args.seconds,
        "env": args.env, "sides": {}}
    for side, source in sides.items():
        progress(f"{side}: the API from {source or 'this checkout'}")
        with serving("api", args.data_dir.resolve(), env=env, cwd=source) as (base, _):
            port = int(base.rsplit(":", 1)[1])

            def request(client: int, target: str, port: int = port) -> bytes:
                return get_request("127.0.0.1", port, target,
                                   {"Authorization": f"apikey {tokens[client]}"})
            light = [request(light_client, f"/streaming/statistics/countries?{a.window_query}")
                     for a in light_asks]
            heavy = request(heavy_client, result["heavy_request"])
            result["sides"][side] = {"api_source": str(source or "this checkout"),
                                     "commit": _commit(source or Path.cwd()),
                                     **asyncio.run(_phases(port, light, heavy, args))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data-bench"),
                        help="embedded data dir made by benchmarks.generate")
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase's length (20)")
    parser.add_argument("--light-concurrency", type=int, default=2)
    parser.add_argument("--heavy-concurrency", type=int, default=16)
    parser.add_argument("--single-concurrency", type=int, default=8,
                        help="the heavy client's concurrency alone, last (8)")
    parser.add_argument("--windows", type=int, default=20_000,
                        help="distinct light windows, half per phase (20000)")
    parser.add_argument("--before-source", type=Path, default=None,
                        help="another checkout whose API is measured the same way")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for this checkout's and the other's API")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = measure(args)
    if args.out:
        write_result(args.out, {"benchmark": "fairness", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
