r"""Collector throughput and latency: single-event beacons per second, per worker count and
per core (architecture §10), over a sink that only counts or through a real one, closed-loop and
at fixed arrival rates (open loop), so that a user can read their capacity.

    python -m benchmarks.collector_throughput --seconds 10
    python -m benchmarks.collector_throughput --workers 1,2 --rounds 3 --out 'w{workers}.json'
    python -m benchmarks.collector_throughput --sink counting,kafka,embedded --rounds 3 \
        --connections 256 --rate 10,1000,5000 \
        --out 'benchmarks/results/collector_sink_{sink}.json'
    python -m benchmarks.collector_throughput --sink counting,kafka,embedded,run --rounds 3 \
        --connections 256 --rate 10,1000,5000 --share-cpus --before ../previous \
        --out 'benchmarks/results/collector_sink_{sink}.json'

`--sink counting` (the default): the collector app runs in a server process of its own over a
sink that only counts events, served as `viewstats collector` serves it: uvicorn with the
bounded httptools protocol of viewstats.http_limits, one process for one worker, and for N
workers the supervisor of viewstats.workers with N worker processes on one port (SO_REUSEPORT),
whose metrics go through prometheus_client's multiprocess files. That isolates the collector
(HTTP parsing, routing, validation, client IP and GeoIP, the JSON answer) from batching and
storage. `--sink kafka` and `--sink embedded` measure what a deployment gets instead: the server
process is `viewstats collector` itself, started as operators start it, on a fresh data dir,
writing into Kafka with acks=all (a topic of its own on `--bootstrap`, or on a private
single-node broker started for the run, whose CPU is not the server's), or into the embedded
chDB (`viewstats migrate` first), each 202 only once the events are durable; `--sink run` is
`viewstats run`, the whole platform on the embedded database, as `make run` starts it. A beacon
then waits for the broker's acknowledgement or its insert, so a closed loop takes more
connections (256 above) for the server's CPU, not those round trips, to set the pace. One worker
only with those: each worker would open the data dir's database, which one process owns.
`--before DIR` measures those servers from another checkout's folder too (`-m` imports from the
working directory first), the previous code, in turn with this checkout's within each round, so
old and new meet the same machine; their results go beside, named with `_before` (FILE's name
before .json); the counting sink is this checkout's. Several sinks are measured in turn, round
by round, as worker counts are. The GeoIP database is the real one, found as `viewstats` finds
it (GEOIP_DB, else <data-dir>/geoip or the cache `viewstats setup` fills), and every beacon
arrives as if through a proxy on loopback, with an X-Forwarded-For hop, so the trusted-proxy
walk and a real lookup are paid on every request. uvicorn's own X-Forwarded-For handling is off
(`proxy_headers=False`), as the collector applies TRUSTED_PROXIES itself. `--http`/`--loop` pick
the HTTP protocol and event loop of the counting server: "viewstats" (the default) is the
bounded protocol `viewstats` serves, "auto" uvicorn's own httptools.

Closed loop: client processes of benchmarks.http_load hold `--connections` keep-alive
connections each, and each sends its next beacon when the last is answered. Open loop (`--rate
R,...`, after the closed loop, on the same server): one client process of benchmarks.open_loop
sends beacons at R per second, answered or not, as players do; latency counts from each beacon's
scheduled send, so a server that falls behind shows it (no coordinated omission), and the
generator's own lateness is reported beside: late by more than 10 ms (p99), it says it did not
keep the schedule. N workers are pinned to the first N usable CPUs, and the clients to the CPUs
left; when none is left (2 workers on 2 cores) the clients share the server's CPUs, so beacons/s
then measures the machine, server and load together, and beacons per server CPU-second is the
figure that compares; `--share-cpus` puts server and load on every CPU, as a user's small
machine runs them (the capacity targets' setting). Both clients are bare asyncio protocols on
uvloop, whose CPU per request is a fraction of the server's (reported): a full HTTP client such
as httpx would measure itself on a small machine. The requests carry the headers a browser's
sendBeacon sends, and each is a new view (benchmarks.beacons), so that no writer's dedup window
drops one. `--workers 1,2 --rounds R` measures each worker count R times, alternating, so that a
machine whose load changes affects both alike.

Reported per sink and worker count, closed loop and at each rate: beacons/s answered 202, the
server's CPU (cores, supervisor and workers) and per beacon (ms), the clients' CPU, p50/p99
latency to the 202, and the answers other than 202 (open loop: also those never answered, and
how late the generator was); progress goes to stderr, the result to stdout and, with `--out
FILE`, to JSON for benchmarks.report (benchmarks/results/collector_throughput.json for the
counting sink, collector_sink_*.json for the comparison of sinks); with several worker counts
FILE must hold `{workers}`, with several sinks `{sink}`, and each gets a file of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from benchmarks.broker import kafka_bootstrap
from benchmarks.collector_clients import Run, closed, open_loop
from benchmarks.collector_server import Server, serving
from benchmarks.http_load import percentile
from benchmarks.open_loop import figures
from benchmarks.record import write_result
from viewstats.core.settings import Settings
from viewstats.devtools.processes import free_port

TARGET = 10_000
SINKS = ("counting", "kafka", "embedded", "run")
# A generator this late (p99) no longer keeps the schedule it measures; below, a busy machine's
# scheduler wake-ups (a few ms) are the whole of it.
LAG_WARN_MS = 10.0


def _sinks(raw: str) -> list[str]:
    names = raw.split(",")
    if unknown := [name for name in names if name not in SINKS]:
        raise argparse.ArgumentTypeError(f"unknown sink(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(SINKS)}")
    return names


def _positive_list(kind: Callable[[str], float]) -> Callable[[str], list[Any]]:
    def parse(raw: str) -> list[Any]:
        try:
            values = [kind(part) for part in raw.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {raw}") from None
        if min(values) <= 0:
            raise argparse.ArgumentTypeError("values must be positive")
        return values
    return parse


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure collector throughput in single-event beacons per second, for one "
                    "or several worker processes, over a sink that only counts or through "
                    "Kafka or the embedded database, closed-loop and at fixed arrival rates.")
    parser.add_argument("--sink", type=_sinks, default=["counting"], metavar="SINK[,SINK...]",
                        help="counting (default), kafka (acks=all) or embedded (chDB); several "
                             "are measured in turn")
    parser.add_argument("--bootstrap", help="the kafka sink's broker (default: a private one "
                        "started for the run)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="also measure the real sinks' servers from this checkout's folder "
                             "(the previous code), in turn with this one's; results beside "
                             "--out's, named with _before")
    parser.add_argument("--seconds", type=float, default=10, help="measured time (default 10)")
    parser.add_argument("--warmup", type=float, default=2,
                        help="unmeasured start (default 2; with the embedded sink at least its "
                             "linger and a second)")
    parser.add_argument("--workers", type=_positive_list(int), default=[1], metavar="N[,N...]",
                        help="collector worker processes; several counts are measured in turn "
                             "(default 1)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each worker count is measured, alternating (default 1)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections per client process (default 32); open "
                             "loop: opened before the clock starts, more as beacons find none "
                             "free")
    parser.add_argument("--clients", type=int, default=1,
                        help="closed loop: client processes (default 1)")
    parser.add_argument("--rate", type=_positive_list(float), default=[], metavar="R[,R...]",
                        help="also measure open loop at these arrival rates, beacons/s")
    parser.add_argument("--max-connections", type=int, default=4096,
                        help="open loop: connections at most; beyond, due beacons queue "
                             "(default 4096)")
    parser.add_argument("--drain", type=float, default=5,
                        help="open loop: seconds to wait for the last answers (default 5)")
    parser.add_argument("--share-cpus", action="store_true",
                        help="server and load generator both on every usable CPU, as on a "
                             "small machine a user runs it (default: the server pinned to its "
                             "workers' CPUs, the load on the others)")
    parser.add_argument("--http", choices=("viewstats", "auto", "h11", "httptools"),
                        default="viewstats",
                        help="HTTP protocol: the bounded one `viewstats` serves (default), or "
                             "one of uvicorn's")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="uvicorn event loop (default auto, as `viewstats` serves)")
    parser.add_argument("--geoip", type=Path, default=Settings.from_env().geoip_path,
                        help="GeoIP database (default: as `viewstats` finds it, GEOIP_DB, else "
                             "<data-dir>/geoip or the setup cache's: %(default)s)")
    parser.add_argument("--out", type=str, help="write the result as JSON here; with several "
                        "worker counts a path holding {workers}, with several sinks {sink}, one "
                        "file each")
    args = parser.parse_args()
    for name, values in (("workers", args.workers), ("sink", args.sink)):
        if args.out and len(values) > 1 and f"{{{name}}}" not in args.out:
            parser.error(f"--out: with several --{name} the path must hold {{{name}}}")
    if args.workers != [1] and args.sink != ["counting"]:
        parser.error("--workers: one with a real sink; each `viewstats collector` worker would "
                     "open the data dir's embedded database, which one process owns")
    if args.sink != ["counting"] and (args.http, args.loop) != ("viewstats", "auto"):
        parser.error("--http/--loop: the real sinks are served as `viewstats collector` serves "
                     "them, with its own protocol and loop")
    # The embedded writer answers a beacon up to a linger after it came (group commit), so a
    # warm-up shorter than that would end before any answer.
    linger_s = Settings.from_env().embedded_linger_ms / 1000
    if {"embedded", "run"} & set(args.sink) and args.warmup < linger_s + 1:
        print(f"--warmup {args.warmup:g}: {linger_s + 1:g} s, the embedded writer's linger "
              "(EMBEDDED_LINGER_MS) and a second", file=sys.stderr)
        args.warmup = linger_s + 1
    return args


def _placement(workers: int, share: bool) -> tuple[set[int], set[int]]:
    """The server's CPUs (the first `workers` usable ones, or all with `share`) and the
    clients' (the rest, or all of them when none is left)."""
    cpus = sorted(os.sched_getaffinity(0))
    server = set(cpus) if share else set(cpus[:workers])
    return server, (set(cpus) - server) or set(cpus)


def _sources(sink: str, args: argparse.Namespace) -> list[str | None]:
    """The checkouts whose server a sink is measured from: this one (None), and --before's."""
    if args.before is None or sink == "counting":
        return [None]
    return [None, str(args.before.resolve())]


def _measure(sink: str, source: str | None, workers: int, args: argparse.Namespace,
             bootstrap: str | None) -> list[Run]:
    """One server of `sink`: closed loop, then each open-loop rate."""
    served = Server(sink, args.http, args.loop, str(args.geoip), bootstrap, source)
    port = free_port()
    server_cpus, client_cpus = _placement(workers, args.share_cpus)
    with serving(served, port, server_cpus, workers) as server:
        shared = "" if not client_cpus & server_cpus else " (shared with the server)"
        print(f"{_name(sink, source)}, {workers} worker(s) on 127.0.0.1:{port}, CPUs "
              f"{sorted(server_cpus)}; clients on CPUs {sorted(client_cpus)}{shared}",
              file=sys.stderr, flush=True)
        return [closed(served, server, port, workers, client_cpus, args),
                *(open_loop(served, server, port, workers, client_cpus, rate, args)
                  for rate in args.rate)]


def _cpu_figures(runs: Sequence[Run]) -> dict[str, float | None]:
    """CPU in cores, and per beacon answered 202 (None without one)."""
    wall, beacons = sum(r.seconds for r in runs), sum(r.beacons for r in runs)
    cpu, clients_cpu = sum(r.server_cpu for r in runs), sum(r.clients_cpu for r in runs)
    return {"server_cpu_cores": cpu / wall, "beacons_per_cpu_second": beacons / cpu,
            "server_cpu_ms_per_beacon": 1e3 * cpu / beacons if beacons else None,
            "client_cpu_cores": clients_cpu / wall,
            "client_cpu_us_per_beacon": 1e6 * clients_cpu / beacons if beacons else None}


def _open_summary(runs: Sequence[Run], rate: float) -> dict[str, object]:
    result = {"rate": rate, **figures([r.window for r in runs if r.window is not None]),
              **_cpu_figures(runs)}
    result["behind"] = cast(float, result["generator_lag_p99_ms"]) > LAG_WARN_MS
    return result


def _summary(runs: Sequence[Run], args: argparse.Namespace) -> dict[str, object]:
    """One sink and worker count over its rounds: the totals' ratios, each round's figures;
    open loop per rate."""
    closed = [r for r in runs if r.rate is None]
    wall, beacons = sum(r.seconds for r in closed), sum(r.beacons for r in closed)
    latencies = [ms for r in closed for ms in r.latencies_ms]
    server_cpus, client_cpus = _placement(closed[0].workers, args.share_cpus)
    sink, source = closed[0].sink, closed[0].source
    return {
        "benchmark": "collector_throughput", "sink": sink, "workers": closed[0].workers,
        "seconds": wall, "beacons": beacons, "beacons_per_s": beacons / wall,
        **_cpu_figures(closed),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "non_202_answers": sum(r.failed for r in closed),
        "accepted_per_metrics": sum(r.accepted for r in closed),
        "rounds": [{"beacons_per_s": r.beacons / r.seconds, **_cpu_figures([r])}
                   for r in closed],
        "open_loop": [_open_summary([r for r in runs if r.rate == rate], rate)
                      for rate in args.rate],
        "alternated_with": args.workers, "alternated_sinks": args.sink,
        "server_source": "this checkout" if source is None else str(args.before),
        "server_cpus": sorted(server_cpus),
        "client_cpus": sorted(client_cpus), "client_processes": args.clients,
        "connections_per_client": args.connections, "max_connections": args.max_connections,
        "http": args.http, "loop": args.loop, "geoip": str(args.geoip)}


def _name(sink: str, source: str | None) -> str:
    return f"{sink} sink" + ("" if source is None else f" from {source}")


def _print_open(name: str, workers: int, result: dict[str, Any]) -> None:
    def ms(value: float | None) -> str:
        return "beyond the run" if value is None else f"{value:.1f} ms"

    print(f"{name}, {workers} worker(s), open loop at {result['rate']:,g}/s: "
          f"{result['beacons_per_s']:,.0f} beacons/s answered 202; server CPU "
          f"{result['server_cpu_cores']:.2f} cores, {result['server_cpu_ms_per_beacon'] or 0:.3f} "
          f"ms per beacon; p50 {ms(result['p50_ms'])}, p99 {ms(result['p99_ms'])} from the "
          f"scheduled send; not 202: {result['non_202_answers'] or 'none'}; load generator "
          f"{result['client_cpu_cores']:.2f} cores, late by p99 "
          f"{result['generator_lag_p99_ms']:.1f} ms, max {result['generator_lag_max_ms']:.1f} "
          f"ms; {result['peak_connections']} connections at most")
    if result["behind"]:
        print(f"  the load generator did NOT keep the schedule (p99 lag over {LAG_WARN_MS:g} "
              "ms): this rate measures the generator as well as the server")


def main() -> None:
    args = _arguments()
    broker = kafka_bootstrap(args.bootstrap) if "kafka" in args.sink \
        else contextlib.nullcontext(None)
    with broker as bootstrap:
        runs = [run for _ in range(args.rounds) for sink in args.sink
                for source in _sources(sink, args) for workers in args.workers
                for run in _measure(sink, source, workers, args, bootstrap)]
    print()
    keys = [(sink, source, workers) for sink in args.sink for source in _sources(sink, args)
            for workers in args.workers]
    results = {key: _summary([r for r in runs if (r.sink, r.source, r.workers) == key], args)
               for key in keys}
    per_core = {key: cast(float, result["beacons_per_cpu_second"])
                for key, result in results.items()}
    for (sink, source, workers), result in results.items():
        # Against the counting sink of the same run: a ratio survives a machine's changing load
        # better than either figure.
        counting = per_core.get(("counting", None, workers))
        ratio = f" ({per_core[sink, source, workers] / counting:.2f}x the counting sink's)" \
            if counting and sink != "counting" else ""
        print(f"{_name(sink, source)}, {workers} worker(s), closed loop: "
              f"{result['beacons_per_s']:,.0f} beacons/s over {result['seconds']:.1f}s; server "
              f"CPU {result['server_cpu_cores']:.2f} cores, clients "
              f"{result['client_cpu_cores']:.2f}; {per_core[sink, source, workers]:,.0f} beacons "
              f"per server CPU-second{ratio} ({result['server_cpu_ms_per_beacon']:.3f} ms each); "
              f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; answers other than "
              f"202: {result['non_202_answers']}; accepted per /metrics, warm-up included: "
              f"{result['accepted_per_metrics']:,.0f}")
        for open_result in cast(list[dict[str, Any]], result["open_loop"]):
            _print_open(_name(sink, source), workers, open_result)
        if args.out:
            path = Path(args.out.format(workers=workers, sink=sink))
            write_result(path if source is None else path.with_stem(f"{path.stem}_before"),
                         result)
    for sink, source in dict.fromkeys((sink, source) for sink, source, _ in keys):
        least = min(per_core[sink, source, w] for w in args.workers)
        print(f"{_name(sink, source)}: {'meets' if least >= TARGET else 'misses'} the target of "
              f"{TARGET:,} beacons/s per core")


if __name__ == "__main__":
    main()
