"""Collector throughput: single-event beacons per second on one core (architecture §10).

    python -m benchmarks.collector_throughput --seconds 10

The collector app runs under uvicorn in a child process pinned to one CPU, over a sink that only
counts events. That isolates the collector (HTTP
parsing, routing, validation, client IP and GeoIP, the JSON answer) from batching and storage,
which the ingest benchmarks measure. The GeoIP database is the real one (`data/geoip`, or
GEOIP_DB), and every beacon arrives as if through a proxy on loopback, with an X-Forwarded-For
hop, so the trusted-proxy walk and a real lookup are paid on every request. uvicorn's own
X-Forwarded-For handling is off (`proxy_headers=False`), as the collector applies
TRUSTED_PROXIES itself. `--http`/`--loop` pick uvicorn's HTTP parser and event loop; "auto"
takes httptools and uvloop when they are installed, as `viewstats` does.

Load comes from client processes pinned to the other CPUs, each holding keep-alive HTTP/1.1
connections of benchmarks.http_load, which costs far less CPU per request than a full HTTP
client such as httpx: on a small machine that one would measure itself. The requests carry the
headers a browser's sendBeacon sends. Reported: beacons/s, the server process's CPU use, and
beacons per CPU-second of the server (the per-core figure); progress goes to stderr, the result
to stdout and, with `--out FILE`, to JSON for benchmarks.report
(benchmarks/results/collector_throughput.json).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing as mp
import os
import random
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from ctypes import c_longlong
from pathlib import Path
from typing import NamedTuple, cast

import orjson

from benchmarks.http_load import run_load
from benchmarks.record import write_result
from viewstats.core.settings import Settings
from viewstats.devtools.processes import NotServing, free_port, wait_for_http

TARGET = 10_000
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
Counter = c_longlong  # shared memory, written by one client process, read by the parent


def _serve(port: int, cpu: int | None, http: str, loop: str, geoip: str) -> None:
    """The server process: the collector over a counting sink, alone on `cpu`."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from viewstats.core.events import PlayerEvent
    from viewstats.core.responses import json_response
    from viewstats.core.settings import Settings
    from viewstats.ingest.collector.endpoint import Collector
    from viewstats.ingest.collector.geoip import CountryResolver
    from viewstats.server import build_app

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    class CountingSink:
        def __init__(self) -> None:
            self.count = 0

        async def start(self) -> None:
            pass

        async def submit(self, events: Sequence[PlayerEvent]) -> None:
            self.count += len(events)

        async def stop(self) -> None:
            pass

    sink = CountingSink()

    async def count(_: Request) -> Response:
        return json_response({"events": sink.count})

    collector = Collector(sink, CountryResolver(geoip), Settings().trusted_proxies)
    app = build_app([*collector.routes(), Route("/count", count)])
    # proxy_headers=False: the collector applies TRUSTED_PROXIES itself; uvicorn's own rewrite of
    # the client address would apply a second, differently configured policy, and costs CPU.
    uvicorn.run(app, host="127.0.0.1", port=port, http=http, loop=loop,
                proxy_headers=False, log_level="warning", access_log=False)


def _requests(port: int, count: int, seed: int) -> list[bytes]:
    """Distinct beacons (view ids, clients, viewer addresses), as a browser would send them."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        body = orjson.dumps({
            "event": rng.choice(("init", "start", "watch")), "client_id": rng.randrange(1, 500),
            "video_id": f"v-{rng.randrange(100_000)}", "type": "vod",
            "view_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))})
        viewer = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}"
        head = (
            f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nOrigin: https://player.example.com\r\n"
            "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n"
            "Referer: https://player.example.com/watch/v-1\r\n"
            "Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
            f"X-Forwarded-For: {viewer}\r\n\r\n")
        out.append(head.encode() + body)
    return out


def _drive(port: int, cpus: set[int], connections: int, seconds: float, seed: int,
           ok: Counter, failed: Counter) -> None:
    """A client process: `connections` beacon loops until `seconds` have passed."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    requests = _requests(port, 4096, seed)

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
    server_cpu: float  # CPU seconds so far
    clients_cpu: float


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count") as answer:
        events: int = orjson.loads(answer.read())["events"]
    return events


def _arguments() -> argparse.Namespace:
    cpus = sorted(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(
        description="Measure collector throughput in single-event beacons per second, with the "
                    "server pinned to one CPU and a sink that only counts.")
    parser.add_argument("--seconds", type=float, default=10, help="measured time (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured start (default 2)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections per client process (default 32)")
    parser.add_argument("--clients", type=int, default=max(1, len(cpus) - 1),
                        help="client processes (default: one per CPU left after the server)")
    parser.add_argument("--server-cpu", type=int, default=cpus[0],
                        help=f"CPU the server is pinned to (default {cpus[0]})")
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto",
                        help="uvicorn HTTP implementation (default auto, as `viewstats` serves)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="uvicorn event loop (default auto, as `viewstats` serves)")
    parser.add_argument("--geoip", type=Path, default=Settings.from_env().geoip_path,
                        help="GeoIP database (default $GEOIP_DB or data/geoip)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    client_cpus = set(os.sched_getaffinity(0)) - {args.server_cpu}
    if not client_cpus:
        print("warning: one CPU only; clients and server share it", file=sys.stderr)
    spawn = mp.get_context("spawn")
    port = free_port()
    server = spawn.Process(target=_serve, daemon=True,
                           args=(port, args.server_cpu, args.http, args.loop, str(args.geoip)))
    server.start()
    server_pid = server.pid
    assert server_pid is not None
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/count", lambda: server.exitcode, timeout=30)
        except NotServing as exc:
            sys.exit(f"the collector did not start: {exc}; see its output above")
        print(f"collector on 127.0.0.1:{port}, pid {server_pid}, CPU {args.server_cpu}; "
              f"{args.clients} client process(es) x {args.connections} connections on CPUs "
              f"{sorted(client_cpus) or 'shared'}", file=sys.stderr, flush=True)
        counters: list[tuple[Counter, Counter]] = [
            (spawn.RawValue(c_longlong, 0), spawn.RawValue(c_longlong, 0))
            for _ in range(args.clients)]
        clients = [spawn.Process(target=_drive, daemon=True, args=(
            port, client_cpus, args.connections, args.warmup + args.seconds + 1, seed, ok,
            failed)) for seed, (ok, failed) in enumerate(counters)]
        for client in clients:
            client.start()

        def sample() -> Sample:
            return Sample(time.monotonic(), sum(ok.value for ok, _ in counters),
                          sum(failed.value for _, failed in counters), _cpu_seconds(server_pid),
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
        wall, cpu = last.at - first.at, max(last.server_cpu - first.server_cpu, 1e-9)
        beacons = last.ok - first.ok
        stored = _server_count(port)
        print(f"\n{beacons / wall:,.0f} beacons/s over {wall:.1f}s; server CPU {cpu / wall:.0%} "
              f"of one core; {beacons / cpu:,.0f} beacons per server CPU-second")
        print(f"whole run, warm-up included: answers other than 202: {last.failed}; events "
              f"counted by the sink: {stored:,}")
        verdict = "meets" if beacons / cpu >= TARGET else "misses"
        print(f"{verdict} the target of {TARGET:,} beacons/s per core")
        if args.out:
            write_result(args.out, {
                "benchmark": "collector_throughput", "seconds": wall, "beacons": beacons,
                "beacons_per_s": beacons / wall, "server_cpu_cores": cpu / wall,
                "beacons_per_cpu_second": beacons / cpu, "non_202_answers": last.failed,
                "counted_by_sink": stored, "client_processes": args.clients,
                "connections_per_client": args.connections, "http": args.http,
                "loop": args.loop, "geoip": str(args.geoip)})
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
