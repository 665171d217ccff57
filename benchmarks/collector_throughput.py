r"""Collector throughput: single-event beacons per second, per worker count and per core
(architecture §10), over a sink that only counts or through a real one.

    python -m benchmarks.collector_throughput --seconds 10
    python -m benchmarks.collector_throughput --workers 1,2 --rounds 3 --out 'w{workers}.json'
    python -m benchmarks.collector_throughput --sink counting,kafka,embedded --rounds 3 \
        --connections 256 --out 'benchmarks/results/collector_sink_{sink}.json'

`--sink counting` (the default): the collector app runs in a server process of its own over a
sink that only counts events, served as `viewstats collector` serves it: uvicorn with the
bounded httptools protocol of viewstats.http_limits, one process for one worker, and for N
workers the supervisor of viewstats.workers with N worker processes on one port (SO_REUSEPORT),
whose metrics go through prometheus_client's multiprocess files. That isolates the collector
(HTTP parsing, routing, validation, client IP and GeoIP, the JSON answer) from batching and
storage. `--sink kafka` and `--sink embedded` measure what a deployment gets instead: the
server process is `viewstats collector` itself (viewstats.server.serve_collector) on a fresh
data dir, writing into Kafka with acks=all (a topic of its own on `--bootstrap`, or on a private
single-node broker started for the run, whose CPU is not the server's), or into the embedded
chDB (migrated first), each 202 only once the events are durable. A beacon then waits for the
broker's acknowledgement or its batch's insert, so it takes more connections (256 above) for the
server's CPU, not those round trips, to set the pace. One worker only with those: each
`viewstats collector` worker opens the data dir's database, which one process owns.
Several sinks are measured in turn, round by round, as worker counts are. The GeoIP database is
the real one, found as `viewstats` finds it (GEOIP_DB, else <data-dir>/geoip or the cache
`viewstats setup` fills), and every beacon arrives as if through a proxy on loopback, with an
X-Forwarded-For hop, so the trusted-proxy walk and a real lookup are paid on every request.
uvicorn's own X-Forwarded-For handling is off (`proxy_headers=False`), as the collector applies
TRUSTED_PROXIES itself. `--http`/`--loop` pick the HTTP protocol and event loop of the counting
server: "viewstats" (the default) is the bounded protocol `viewstats` serves, "auto" uvicorn's
own httptools.

N workers are pinned to the first N usable CPUs, and load comes from client processes pinned to
the CPUs left; when none is left (2 workers on 2 cores) the clients share the server's CPUs, so
beacons/s then measures the machine, server and load together, and beacons per server
CPU-second is the figure that compares. Clients hold keep-alive HTTP/1.1 connections of
benchmarks.http_load, which costs far less CPU per request than a full HTTP client such as
httpx: on a small machine that one would measure itself. The requests carry the headers a
browser's sendBeacon sends, and each is a new view, so that no writer's dedup window drops one.
`--workers 1,2 --rounds R` measures each worker count R times, alternating, so that a machine
whose load changes affects both alike.

Reported per sink and worker count: beacons/s, the server's CPU use (supervisor and workers)
and the clients', and beacons per CPU-second of the server (the per-core figure); progress goes
to stderr, the result to stdout and, with `--out FILE`, to JSON for benchmarks.report
(benchmarks/results/collector_throughput.json for the counting sink, collector_sink_*.json for
the comparison of sinks); with several worker counts FILE must hold `{workers}`, with several
sinks `{sink}`, and each gets a file of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import multiprocessing as mp
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from ctypes import c_longlong
from pathlib import Path
from typing import Any, NamedTuple, cast, overload

import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.broker import kafka_bootstrap
from benchmarks.http_load import run_load
from benchmarks.record import write_result
from viewstats.core.settings import Settings
from viewstats.devtools.processes import NotServing, free_port, wait_for_http

TARGET = 10_000
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
Counter = c_longlong  # shared memory, written by one client process, read by the parent
ACCEPTED = "viewstats_events_accepted_total"
SINKS = ("counting", "kafka", "embedded")
# A new view id per beacon for as long as any run lasts; the client makes each when it sends it.
ENDLESS = 2**40
VIEW_ID_SLOT = b"00000000-0000-4000-8000-000000000000"  # as long as every uuid4's text


class Server(NamedTuple):
    """What the server process serves (sent to the spawned process, so plain values)."""

    sink: str
    http: str
    loop: str
    geoip: str
    data_dir: str | None  # the real sinks' `viewstats collector` data dir
    bootstrap: str | None  # the kafka sink's broker


def _serve(port: int, cpus: set[int], workers: int, server: Server) -> None:
    """The server process, on `cpus`: one collector process, or a supervisor of `workers`."""
    os.sched_setaffinity(0, cpus)  # spawned workers inherit it
    if server.sink != "counting":
        _serve_viewstats_collector(server, port)
    elif workers == 1:
        _serve_collector(server, port, None)
    else:
        from viewstats.workers import serve_workers
        sys.exit(serve_workers(workers, "127.0.0.1", port,
                               functools.partial(_serve_collector, server, port)))


def _serve_viewstats_collector(server: Server, port: int) -> None:
    """`viewstats collector` on a fresh data dir, into Kafka or into the embedded database."""
    from viewstats.server import migrate_database, serve_collector

    assert server.data_dir is not None
    # Settings of their own, not the environment's: a CLICKHOUSE_URL there would turn the
    # embedded sink into another. A new topic per run, so runs never share a backlog.
    settings = Settings(data_dir=Path(server.data_dir), geoip_db=Path(server.geoip),
                        kafka_bootstrap_servers=server.bootstrap,
                        kafka_topic=f"bench-collector-{uuid.uuid4().hex[:12]}")
    if server.sink == "embedded":
        migrate_database(settings)  # `viewstats collector` expects a migrated database
    serve_collector(settings, "127.0.0.1", port)


def _serve_collector(server: Server, port: int, sock: socket.socket | None) -> int:
    """The collector over a counting sink, served as `viewstats collector` serves."""
    import uvicorn

    from viewstats.core.events import PlayerEvent
    from viewstats.http_limits import HttpLimits, protocol_with
    from viewstats.ingest.collector.endpoint import Collector
    from viewstats.ingest.collector.geoip import CountryResolver
    from viewstats.server import build_app, ops_routes

    class CountingSink:
        async def start(self) -> None:
            pass

        async def submit(self, events: Sequence[PlayerEvent]) -> None:
            pass  # the collector counts what the sink took in viewstats_events_accepted

        async def stop(self) -> None:
            pass

    collector = Collector(CountingSink(), CountryResolver(server.geoip), Settings().trusted_proxies)
    app = build_app([*collector.routes(), *ops_routes({})])
    protocol: Any = protocol_with(HttpLimits()) if server.http == "viewstats" else server.http
    # proxy_headers=False: the collector applies TRUSTED_PROXIES itself; uvicorn's own rewrite of
    # the client address would apply a second, differently configured policy, and costs CPU.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, loop=server.loop,
                            proxy_headers=False, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
    return 0


class Beacons(Sequence[bytes]):
    """Endless beacons, as browsers send them, each of a new view: beacon i is template
    i % templates (event, client, video, viewer address) with view id i of this client process.
    Made as they are sent, since a run's count is not known in advance; a few string joins
    each, on the client's CPU."""

    def __init__(self, port: int, templates: int, seed: int) -> None:
        self._templates = _templates(port, templates, seed)
        self._seed = seed

    def __len__(self) -> int:
        return ENDLESS

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            raise TypeError("beacons are made one at a time")
        head, tail = self._templates[index % len(self._templates)]
        # The seed in the high bits keeps client processes apart; uuid4's fixed bits are above
        # bit 61, so ids stay distinct.
        view_id = uuid.UUID(int=self._seed << 64 | index, version=4)
        return head + str(view_id).encode() + tail


def _templates(port: int, count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Beacons (clients, videos, viewer addresses) split where the view id goes."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        body = orjson.dumps({
            "event": rng.choice(("init", "start", "watch")), "client_id": rng.randrange(1, 500),
            "video_id": f"v-{rng.randrange(100_000)}", "type": "vod",
            "view_id": VIEW_ID_SLOT.decode()})
        viewer = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}"
        head = (
            f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nOrigin: https://player.example.com\r\n"
            "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n"
            "Referer: https://player.example.com/watch/v-1\r\n"
            "Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
            f"X-Forwarded-For: {viewer}\r\n\r\n")
        head_bytes, _, tail = (head.encode() + body).partition(VIEW_ID_SLOT)
        out.append((head_bytes, tail))
    return out


def _drive(port: int, cpus: set[int], connections: int, seconds: float, seed: int,
           ok: Counter, failed: Counter) -> None:
    """A client process: `connections` beacon loops until `seconds` have passed."""
    os.sched_setaffinity(0, cpus)
    requests = Beacons(port, 4096, seed)

    def count(status: int) -> None:
        if status == 202:
            ok.value += 1
        else:
            failed.value += 1

    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(run_load("127.0.0.1", port, requests, concurrency=connections,
                            seconds=seconds, on_answer=count))


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: the less the client costs, the more CPU is left to measure."""
    try:
        factory = importlib.import_module("uvloop").new_event_loop
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], factory)


class Sample(NamedTuple):
    at: float  # monotonic seconds
    ok: int  # 202 answers so far
    failed: int  # other answers so far
    server_cpu: float  # CPU seconds so far, the supervisor's and its workers'
    clients_cpu: float


class Run(NamedTuple):
    sink: str
    workers: int
    seconds: float
    beacons: int
    server_cpu: float  # CPU seconds
    clients_cpu: float
    failed: int  # answers other than 202, warm-up included
    accepted: float  # events the collector accepted (its /metrics), warm-up included


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _accepted(port: int) -> float:
    """viewstats_events_accepted from /metrics: one process's, or summed over the workers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
        text = answer.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == ACCEPTED)


def _worker_counts(raw: str) -> list[int]:
    counts = [int(part) for part in raw.split(",")]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts must be positive integers")
    return counts


def _sinks(raw: str) -> list[str]:
    names = raw.split(",")
    if unknown := [name for name in names if name not in SINKS]:
        raise argparse.ArgumentTypeError(f"unknown sink(s) {', '.join(unknown)}; "
                                         f"choose from {', '.join(SINKS)}")
    return names


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure collector throughput in single-event beacons per second, for one "
                    "or several worker processes, over a sink that only counts or through "
                    "Kafka or the embedded database.")
    parser.add_argument("--sink", type=_sinks, default=["counting"], metavar="SINK[,SINK...]",
                        help="counting (default), kafka (acks=all) or embedded (chDB); several "
                             "are measured in turn")
    parser.add_argument("--bootstrap", help="the kafka sink's broker (default: a private one "
                        "started for the run)")
    parser.add_argument("--seconds", type=float, default=10, help="measured time (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured start (default 2)")
    parser.add_argument("--workers", type=_worker_counts, default=[1], metavar="N[,N...]",
                        help="collector worker processes; several counts are measured in turn "
                             "(default 1)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each worker count is measured, alternating (default 1)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections per client process (default 32)")
    parser.add_argument("--clients", type=int, default=1,
                        help="client processes (default 1)")
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
    return args


def _placement(workers: int) -> tuple[set[int], set[int]]:
    """The server's CPUs (the first `workers` usable ones) and the clients' (the rest, or all
    of them when none is left)."""
    cpus = sorted(os.sched_getaffinity(0))
    server = set(cpus[:workers])
    return server, (set(cpus) - server) or set(cpus)


@contextlib.contextmanager
def _data_dir(sink: str) -> Iterator[str | None]:
    """A fresh data dir for a real sink's `viewstats collector`, removed afterwards."""
    if sink == "counting":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix=f"bench-collector-{sink}-") as data:
        yield data


def _measure(sink: str, workers: int, args: argparse.Namespace, bootstrap: str | None) -> Run:
    with _data_dir(sink) as data:
        return _measure_server(Server(sink, args.http, args.loop, str(args.geoip), data,
                                      bootstrap), workers, args)


def _measure_server(served: Server, workers: int, args: argparse.Namespace) -> Run:
    spawn = mp.get_context("spawn")
    port = free_port()
    server_cpus, client_cpus = _placement(workers)
    # Not a daemon: a daemon process may not start the workers; it is stopped below.
    server = spawn.Process(target=_serve, args=(port, server_cpus, workers, served))
    server.start()
    server_pid = server.pid
    assert server_pid is not None
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", lambda: server.exitcode, timeout=60)
        except NotServing as exc:
            sys.exit(f"the collector did not start: {exc}; see its output above")
        shared = "" if not client_cpus & server_cpus else " (shared with the server)"
        print(f"{served.sink} sink, {workers} worker(s) on 127.0.0.1:{port}, CPUs "
              f"{sorted(server_cpus)}; "
              f"{args.clients} client process(es) x {args.connections} connections on CPUs "
              f"{sorted(client_cpus)}{shared}", file=sys.stderr, flush=True)
        counters: list[tuple[Counter, Counter]] = [
            (spawn.RawValue(c_longlong, 0), spawn.RawValue(c_longlong, 0))
            for _ in range(args.clients)]
        clients = [spawn.Process(target=_drive, daemon=True, args=(
            port, client_cpus, args.connections, args.warmup + args.seconds + 1, seed, ok,
            failed)) for seed, (ok, failed) in enumerate(counters)]
        for client in clients:
            client.start()

        def sample() -> Sample:
            server_tree = [server_pid, *_children(server_pid)]
            return Sample(time.monotonic(), sum(ok.value for ok, _ in counters),
                          sum(failed.value for _, failed in counters),
                          sum(map(_cpu_seconds, server_tree)),
                          sum(_cpu_seconds(c.pid) for c in clients if c.pid is not None))

        time.sleep(args.warmup)
        first = last = sample()
        if first.ok == 0:
            sys.exit("no beacon was answered during the warm-up; see the errors above")
        while last.at - first.at < args.seconds - 1e-3:
            time.sleep(min(1.0, args.seconds - (last.at - first.at)))
            now = sample()
            wall = now.at - last.at
            print(f"  t={now.at - first.at:5.1f}s  {(now.ok - last.ok) / wall:9,.0f} beacons/s  "
                  f"server CPU {100 * (now.server_cpu - last.server_cpu) / wall:4.0f}%  "
                  f"clients CPU {100 * (now.clients_cpu - last.clients_cpu) / wall:4.0f}%",
                  file=sys.stderr, flush=True)
            last = now
        for client in clients:
            client.join()
        return Run(served.sink, workers, last.at - first.at, last.ok - first.ok,
                   max(last.server_cpu - first.server_cpu, 1e-9),
                   last.clients_cpu - first.clients_cpu, last.failed, _accepted(port))
    finally:
        server.terminate()
        server.join(30)


def _summary(runs: Sequence[Run], args: argparse.Namespace) -> dict[str, object]:
    """One sink and worker count over its rounds: the totals' ratios, each round's figures."""
    wall, beacons = sum(r.seconds for r in runs), sum(r.beacons for r in runs)
    cpu, clients_cpu = sum(r.server_cpu for r in runs), sum(r.clients_cpu for r in runs)
    server_cpus, client_cpus = _placement(runs[0].workers)
    return {
        "benchmark": "collector_throughput", "sink": runs[0].sink, "workers": runs[0].workers,
        "seconds": wall,
        "beacons": beacons, "beacons_per_s": beacons / wall, "server_cpu_cores": cpu / wall,
        "beacons_per_cpu_second": beacons / cpu,
        "server_cpu_us_per_beacon": 1e6 * cpu / beacons, "client_cpu_cores": clients_cpu / wall,
        "non_202_answers": sum(r.failed for r in runs),
        "accepted_per_metrics": sum(r.accepted for r in runs),
        "rounds": [{"beacons_per_s": r.beacons / r.seconds,
                    "server_cpu_cores": r.server_cpu / r.seconds,
                    "beacons_per_cpu_second": r.beacons / r.server_cpu,
                    "client_cpu_cores": r.clients_cpu / r.seconds} for r in runs],
        "alternated_with": args.workers, "alternated_sinks": args.sink,
        "server_cpus": sorted(server_cpus),
        "client_cpus": sorted(client_cpus), "client_processes": args.clients,
        "connections_per_client": args.connections, "http": args.http, "loop": args.loop,
        "geoip": str(args.geoip)}


def main() -> None:
    args = _arguments()
    broker = kafka_bootstrap(args.bootstrap) if "kafka" in args.sink \
        else contextlib.nullcontext(None)
    with broker as bootstrap:
        runs = [_measure(sink, workers, args, bootstrap) for _ in range(args.rounds)
                for sink in args.sink for workers in args.workers]
    print()
    results = {key: _summary([r for r in runs if (r.sink, r.workers) == key], args)
               for key in ((sink, workers) for sink in args.sink for workers in args.workers)}
    per_core = {key: cast(float, result["beacons_per_cpu_second"])
                for key, result in results.items()}
    for (sink, workers), result in results.items():
        # Against the counting sink of the same run: a ratio survives a machine's changing load
        # better than either figure.
        counting = per_core.get(("counting", workers))
        ratio = f" ({per_core[sink, workers] / counting:.2f}x the counting sink's)" \
            if counting and sink != "counting" else ""
        print(f"{sink} sink, {workers} worker(s): {result['beacons_per_s']:,.0f} beacons/s over "
              f"{result['seconds']:.1f}s; server CPU {result['server_cpu_cores']:.2f} cores, "
              f"clients {result['client_cpu_cores']:.2f}; {per_core[sink, workers]:,.0f} beacons "
              f"per server CPU-second{ratio} ({result['server_cpu_us_per_beacon']:.0f} us each); "
              f"answers other than 202: {result['non_202_answers']}; accepted per /metrics, "
              f"warm-up included: {result['accepted_per_metrics']:,.0f}")
        if args.out:
            write_result(Path(args.out.format(workers=workers, sink=sink)), result)
    for sink in args.sink:
        verdict = "meets" if min(per_core[sink, w] for w in args.workers) >= TARGET else "misses"
        print(f"{sink} sink: {verdict} the target of {TARGET:,} beacons/s per core")


if __name__ == "__main__":
    main()
