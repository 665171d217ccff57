r"""Soak: the platform under steady traffic and a fault every few minutes, for an hour
(issue 18, item 5; not in CI).

    python -m benchmarks.soak --topology server --minutes 60 \
        --out benchmarks/results/soak-server.json --plot benchmarks/plots/soak-server.png
    python -m benchmarks.soak --topology run --minutes 60 \
        --out benchmarks/results/soak-run.json --plot benchmarks/plots/soak-run.png
    python -m benchmarks.soak --topology run --minutes 4 --fault-every 1 --warmup 0.5  # a smoke

then `python -m benchmarks.report` writes RESULTS.md with a section per soak-*.json. As root
(the read-only fault mounts), from a checkout set up by `make` (the Kafka jars, the GeoIP
database); a smoke run with no `--out` leaves everything in its work dir.

Topologies (benchmarks.soak_topology), each on a Kafka broker of its own:
- `server`: `viewstats collector`, `viewstats consumer` and `viewstats api` as processes of
  their own on the test ClickHouse HTTP endpoint (chDB behind CLICKHOUSE_URL);
- `run`: one `viewstats run` with KAFKA_BOOTSTRAP_SERVERS on the embedded chDB.

Traffic (benchmarks.soak_traffic): `--rate` new views a second, each a beacon that is sent
again with the same body while it is refused (5xx) or not answered, as the player does;
`--query-rate` questions a second with a key made by `viewstats keys create`: countries and the
family's views, hosts and popular, over random windows near now, with minute edges in real time
zones. Every `--fault-every` minutes one fault, in turn (benchmarks.soak_faults): the broker
SIGKILLed for `--outage` s; the consumer killed -9 and restarted (in `run`, the whole process);
the data dir read-only for `--outage` s (a read-only bind mount: run as root).

Once a second (benchmarks.soak_record), into `<out>.csv`: each process's RSS, open fds and
threads, the consumer group's lag from Kafka (end minus committed offsets), the p99 of the
answers of the last `--p99-window` s, the beacons' counts and the fault under way. Progress goes
to stderr every 10 s. At the end the views answered 202 are compared with the API's count and
with the database's rows, view by view. Judged (benchmarks.soak_report), with a verdict each:
- RSS and open fds of each platform process grow < 5% per lifetime (a restarted process starts
  a new one) once warm: at least `--warmup` minutes old (5: the interpreter's and the engine's
  caches, the connections, the API's sealed buckets fill), and through one fault of each kind
  that came while it lived, plus 30 s (a fault's burst of held requests or backlog sets
  high-water marks that stay; benchmarks.soak_report). With the defaults, a process living
  the whole hour is judged from minute 15.5; a consumer restarted at minute 10 from minute 20.5
  to 25. The dedup window is not full when warm: it keeps DEDUP_HORIZON_S (1 h) of views, so it
  grows for the first hour of traffic, inside what is judged;
- the lag back to `--caught-up` s of traffic or less (what a consumer committing each 200 ms
  batch has in flight at any moment: a sample rarely sees exactly 0), after its peak, within
  30 s of each fault's end: the broker answering again, the killed consumer being started
  again (its start counts), the mount removed (benchmarks.soak_faults);
- no platform process exits by itself (one that does is recorded and started again, as an
  orchestrator would, so the soak goes on);
- nothing lost, nothing doubled.
`--out` writes the result as JSON for benchmarks.report; `--plot` a PNG of RSS, lag and p99
with the faults marked. The work dir (processes' logs, the broker's and the database's data) is
kept, and named at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from benchmarks.record import write_result
from benchmarks.report_parts import Json
from benchmarks.soak_faults import Injector, schedule
from benchmarks.soak_record import LagProbe, Timeseries, every_second, progress_line
from benchmarks.soak_report import KINDS, checks, judged
from benchmarks.soak_results import plot
from benchmarks.soak_topology import REPO, TOPOLOGIES, Topology, topology
from benchmarks.soak_traffic import Beacons, Queries, total_views
from viewstats.core.settings import Settings

PROGRESS_S = 10


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def _until(check: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await check():
                return True
        except Exception as exc:  # the API restarting, or the broker away
            say(f"  waiting: {exc!r}")
        await asyncio.sleep(2)
    return False


async def soak(args: argparse.Namespace, platform: Topology, series: Timeseries) -> Json:
    started = time.monotonic()

    def clock() -> float:
        return time.monotonic() - started

    traffic_stop, record_stop = asyncio.Event(), asyncio.Event()
    beacons = Beacons(platform.collector.base, args.client_id, args.rate)
    queries = Queries(platform.api.base, platform.token, args.query_rate,
                      int(time.time() * 1000), random.Random(args.seed))
    settings = Settings.from_env()
    probe = LagProbe(platform.broker.bootstrap, settings.kafka_topic, settings.consumer_group)
    injector = Injector(platform, args.outage, clock, say)

    def take(late_s: float) -> None:
        p99, answers = queries.p99_ms(args.p99_window)
        row = series.sample(clock(), platform.processes(), {
            "lag": probe.latest(), "p99_ms": None if p99 is None else round(p99, 2),
            "answers_in_window": answers, "beacons_acked": len(beacons.acked),
            "beacons_resent": sum(beacons.resent.values()),
            "beacons_pending": beacons.pending, "fault": injector.active,
            "late_ms": round(late_s * 1000)})
        if len(series.rows) % PROGRESS_S == 1:
            say(progress_line(row, series.labels))

    recording = [asyncio.create_task(probe.run(record_stop)),
                 asyncio.create_task(every_second(record_stop, take)),
                 asyncio.create_task(injector.watch(record_stop))]
    traffic = [asyncio.create_task(beacons.run(traffic_stop, args.drain)),
               asyncio.create_task(queries.run(traffic_stop)),
               asyncio.create_task(injector.run(
                   schedule(args.minutes, args.fault_every, tuple(args.faults)), traffic_stop))]
    await asyncio.sleep(args.minutes * 60)
    say(f"traffic stops: {len(beacons.acked):,} views acked; waiting for the views resent")
    traffic_stop.set()
    await asyncio.gather(*traffic)

    async def counted() -> bool:  # all of Kafka committed, and as many views as acked
        return probe.latest() == 0 and await total_views(
            platform.api.base, platform.token) >= len(beacons.acked)

    say(f"waiting up to {args.drain:g} s for the lag to be 0 and the API to count every acked "
        "view")
    if not await _until(counted, args.drain):
        say(f"not within {args.drain:g} s (lag {probe.latest()})")
    try:
        api_views: int | None = await total_views(platform.api.base, platform.token)
        say(f"the API counts {api_views:,} views of {len(beacons.acked):,} acked")
    except Exception as exc:
        api_views = None
        say(f"the API did not answer the count: {exc!r}")
    record_stop.set()
    await asyncio.gather(*recording)
    return {"acked": beacons.acked, "api_views": api_views, "beacons": {
        "sent": beacons.sent, "acked": len(beacons.acked), "resent": dict(beacons.resent),
        "unresolved": beacons.pending,
        "unexpected": beacons.unexpected[:10]},
        "queries": {"statuses": dict(queries.statuses), "failures": queries.failures},
        "faults": [f.to_json() for f in injector.faults],
        "exits": [e.to_json() for e in injector.exits]}


def judge(args: argparse.Namespace, platform: Topology, rows: list[Json], found: Json,
          out: Path) -> Json:
    """The judged result. What was found is written to `out` first: an hour's figures outlive a
    failure of the checks that follow."""
    acked: set[str] = found.pop("acked")
    params = {"minutes": args.minutes, "rate": args.rate, "query_rate": args.query_rate,
              "fault_every_min": args.fault_every, "outage_s": args.outage,
              "faults": args.faults, "warmup_min": args.warmup, "caught_up_s": args.caught_up,
              "p99_window_s": args.p99_window}
    result = {"benchmark": "soak", "topology": args.topology, "platform": list(platform.platform),
              "params": params, "timeseries": _shown(out.with_suffix(".csv")), **found}
    write_result(out, {**result, "judged": False})
    try:
        stored: Counter[str] | None = platform.stored(args.client_id)
    except Exception as exc:  # the result still says what the API counted
        say(f"the database's rows could not be read: {exc!r}")
        stored, result["database_error"] = None, repr(exc)
    return judged(result, rows, tuple(platform.processes()), acked, stored)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topology", choices=TOPOLOGIES, required=True)
    parser.add_argument("--minutes", type=float, default=60, help="traffic's length (60)")
    parser.add_argument("--fault-every", type=float, default=5, help="minutes (5)")
    parser.add_argument("--faults", type=lambda s: s.split(","), default=list(KINDS),
                        help=f"the kinds taken in turn ({','.join(KINDS)})")
    parser.add_argument("--outage", type=float, default=10,
                        help="seconds the broker is away and the data dir read-only (10)")
    parser.add_argument("--rate", type=float, default=50, help="new views a second (50)")
    parser.add_argument("--query-rate", type=float, default=5, help="questions a second (5)")
    parser.add_argument("--warmup", type=float, default=5,
                        help="minutes of each process lifetime not judged (5)")
    parser.add_argument("--caught-up", type=float, default=1.0,
                        help="lag, in seconds of traffic, that counts as caught up (1)")
    parser.add_argument("--p99-window", type=float, default=10, help="seconds (10)")
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait at the end "
                        "for resent views and for the API to count them (120)")
    parser.add_argument("--client-id", type=int, default=17)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="default: a new /tmp/soak-<topology>-*")
    parser.add_argument("--out", type=Path, default=None, help="the result as JSON (and the "
                        "timeseries beside it, .csv); default: in the work dir")
    parser.add_argument("--plot", type=Path, default=None, help="the PNG (default: work dir)")
    args = parser.parse_args(argv)
    if unknown := set(args.faults) - set(KINDS):
        parser.error(f"--faults: unknown {sorted(unknown)}")
    if "read_only" in args.faults and os.geteuid() != 0:
        parser.error("the read_only fault mounts over the data dir and needs root; "
                     "leave it out with --faults broker,consumer")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The lag probe's clients log every refused connection while the broker is away.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl+C does: unmount, stop processes
    work = args.work_dir or Path(tempfile.mkdtemp(prefix=f"soak-{args.topology}-"))
    out = args.out or work / f"soak-{args.topology}.json"
    plot_path = args.plot or work / f"soak-{args.topology}.png"
    say(f"soak {args.topology}: {args.minutes:g} min in {work}")
    with topology(args.topology, work, args.client_id) as platform:
        say(f"serving: {', '.join(f'{k} {v}' for k, v in platform.processes().items())}")
        series = Timeseries(out.with_suffix(".csv"), tuple(platform.processes()))
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                found = runner.run(soak(args, platform, series))
        finally:
            series.close()
        result = judge(args, platform, series.rows, found, out)
    plot(result, series.rows, plot_path)
    result["plot"] = _shown(plot_path)
    write_result(out, result)
    for check in checks(result):
        say(f"{check.verdict.strip('*'):>12}: {check.target}: {check.measured}")
    say(f"result {out}, plot {plot_path}, logs {work / 'logs'}")
    return 0 if all(c.met is not False for c in checks(result)) else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _shown(path: Path) -> str:
    """`path` relative to the checkout when inside it (as results name their files)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


if __name__ == "__main__":
    sys.exit(main())
