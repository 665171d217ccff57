r"""CPU per insert of one small block into embedded storage, this checkout's code against an
earlier one's, each on a fresh migrated chDB: every materialized view on `player_events`
costs each insert about the same, so blocks of 1, 100 and 1000 rows show the fixed cost.

    python -m benchmarks.insert_cost --before /work/old22 \
        --out benchmarks/results/insert_cost.json

`insert_events` (viewstats/core/events.py) is timed with `time.thread_time` (the calling
thread's CPU: chDB runs a small insert and its views there), beside wall time, `--inserts`
times per block size after `--warmup` untimed ones. Each code runs in a process of its own,
with `PYTHONPATH` at its checkout (`--before DIR`; this checkout when absent), in `--rounds`
rounds that alternate the codes, so that a shared machine's load falls on both alike; the
medians pool every round. This checkout's events carry the audience fields (about 20
browsers, 10 systems, 6 platforms, 200 regions, 50 pages and a pool of viewers); code without
them gets the same events without them, as its collector made them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = (1, 100, 1000)
HERE = Path(__file__).resolve().parents[1]  # this checkout
START_MS = 1_714_521_600_000


def _audience(rng: random.Random, client: int) -> dict[str, object]:
    """Audience fields with the cardinalities the collector sees (skewed to the first ones)."""
    def skewed(n: int) -> int:
        return int(n * rng.random() ** 2)
    return {"browser": f"browser-{skewed(20)}", "os": f"os-{skewed(10)}",
            "platform": ("unknown", "desktop", "mobile", "tablet", "tv", "bot")[skewed(6)],
            "region": f"US-R{skewed(200)}",
            "embed_url": f"https://site{client % 100}.example/page{skewed(50)}",
            "viewer": 1 + skewed(50_000)}


def _events(make: Callable[..., Any], audience: bool, rng: random.Random, count: int,
            first: int) -> list[Any]:
    events = []
    for n in range(first, first + count):
        client = 1 + n % 50
        extra = _audience(rng, client) if audience else {}
        events.append(make(client, START_MS + n * 37, ("init", "start", "watch")[n % 3], "vod",
                           f"v-{n % 997}", str(uuid.UUID(int=n, version=4)), "US",
                           f"site{client % 100}.example", **extra))
    return events


def _worker(inserts: int, warmup: int) -> dict[str, Any]:
    """Runs with the measured checkout's `viewstats` first on the path."""
    import dataclasses

    import viewstats
    from viewstats.core.events import PlayerEvent, insert_events
    from viewstats.core.storage.embedded import EmbeddedStorage
    from viewstats.schema.migrations import migrate

    audience = "viewer" in {f.name for f in dataclasses.fields(PlayerEvent)}
    rng = random.Random(7)
    result: dict[str, Any] = {"viewstats": viewstats.__file__, "audience_fields": audience}
    with tempfile.TemporaryDirectory(prefix="insert-cost-") as scratch:
        storage = EmbeddedStorage(Path(scratch) / "clickhouse", 2)
        try:
            migrate(storage)
            result["views"] = int(storage.query(
                "SELECT count() FROM system.tables WHERE database = currentDatabase() "
                "AND engine = 'MaterializedView'")[0][0])
            first = 0
            for size in SIZES:
                cpu, wall = [], []
                for number in range(warmup + inserts):
                    block = _events(PlayerEvent, audience, rng, size, first)
                    first += size
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    insert_events(storage, block)
                    if number >= warmup:
                        cpu.append((time.thread_time() - started_cpu) * 1000)
                        wall.append((time.perf_counter() - started) * 1000)
                result[str(size)] = {"cpu_ms": cpu, "wall_ms": wall}
        finally:
            storage.close()
    return result


def _run(source: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One worker process on `source`'s code, its own chDB in a scratch folder."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker",
         "--inserts", str(args.inserts), "--warmup", str(args.warmup)],
        cwd=source, env={**os.environ, "PYTHONPATH": str(source)}, check=True,
        capture_output=True, text=True)
    found: dict[str, Any] = json.loads(done.stdout)
    if not found["viewstats"].startswith(str(source.resolve())):
        raise SystemExit(f"{source}: ran {found['viewstats']}, not its own code")
    return found


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sizes = {}
    for size in SIZES:
        cpu = [ms for run in runs for ms in run[str(size)]["cpu_ms"]]
        wall = [ms for run in runs for ms in run[str(size)]["wall_ms"]]
        sizes[str(size)] = {"cpu_ms": statistics.median(cpu), "wall_ms": statistics.median(wall),
                            "inserts": len(cpu)}
    return {"views": runs[0]["views"], "audience_fields": runs[0]["audience_fields"],
            "viewstats": runs[0]["viewstats"], "sizes": sizes}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    codes = {"after": HERE, **({"before": args.before.resolve()} if args.before else {})}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    load_before, started = os.getloadavg(), time.monotonic()
    for number in range(args.rounds):
        # Alternate which code goes first, so neither always follows the other's merges.
        for name in (list(codes) if number % 2 else list(reversed(codes))):
            runs[name].append(_run(codes[name], args))
            print(f"round {number + 1}: {name} done", file=sys.stderr, flush=True)
    # The machine is shared: how long the run took and how busy it was move every figure.
    result: dict[str, Any] = {"rounds": args.rounds, "inserts": args.inserts,
                              "run_seconds": time.monotonic() - started,
                              "load_average": {"start": load_before, "end": os.getloadavg()},
                              "codes": {name: {"source": str(codes[name]), **_summary(found)}
                                        for name, found in runs.items()}}
    for name, code in result["codes"].items():
        print(f"{name}: {code['views']} materialized views; " + "; ".join(
            f"{size} rows {s['cpu_ms']:.2f} ms CPU ({s['wall_ms']:.2f} ms wall)"
            for size, s in code["sizes"].items()))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="an earlier checkout to measure beside")
    parser.add_argument("--rounds", type=int, default=3, help="processes per code (3)")
    parser.add_argument("--inserts", type=int, default=30,
                        help="timed inserts per block size and round (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed inserts first (3)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.inserts, args.warmup)))
        return 0
    result = measure(args)
    if args.out:
        from benchmarks.record import write_result
        write_result(args.out, {"benchmark": "insert_cost", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
