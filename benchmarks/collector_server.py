"""The collector under measurement, as a process of its own pinned to its CPUs, and what is
read of it: its CPU time (with its workers') and its count of accepted events.

The counting sink's collector is built here from this checkout (a sink that only counts, served
as `viewstats collector` serves: uvicorn with the bounded protocol of viewstats.http_limits,
one process, or the supervisor of viewstats.workers over N workers). The real sinks' is
`viewstats collector` itself, started as operators start it, from `source` when given (another
checkout's folder: `-m` imports from the working directory first, so it runs that code).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from viewstats.core.settings import Settings
from viewstats.devtools.processes import (
    VIEWSTATS,
    NotServing,
    shared_viewer_key,
    stop,
    wait_for_http,
)

ACCEPTED = "viewstats_events_accepted_total"
# The environment that would send `viewstats collector` elsewhere than the sink under test.
FOREIGN = ("CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS", "VIEWSTATS_DATA_DIR", "VIEWSTATS_TOPIC")


class Server(NamedTuple):
    """What the server process serves (sent to a spawned process, so plain values)."""

    sink: str
    http: str
    loop: str
    geoip: str
    bootstrap: str | None  # the kafka sink's broker
    source: str | None  # the real sinks' code: another checkout's folder, or this one


class Serving(NamedTuple):
    pid: int
    exit_code: Callable[[], int | None]
    log: Path | None  # where its output goes, when not to this process's

    def output(self) -> str:
        """Its output's last lines, for a message that says why it failed."""
        if self.log is None:
            return "above"
        return "\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@contextlib.contextmanager
def serving(served: Server, port: int, cpus: set[int], workers: int) -> Iterator[Serving]:
    """The collector on 127.0.0.1:`port`, on `cpus`, until the block ends; exits the
    benchmark when it does not start."""
    with (_counting if served.sink == "counting" else _viewstats_collector)(
            served, port, cpus, workers) as server:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server.exit_code, timeout=60)
        except NotServing as exc:
            sys.exit(f"the collector did not start: {exc}; its output: {server.output()}")
        yield server


@contextlib.contextmanager
def _counting(served: Server, port: int, cpus: set[int], workers: int) -> Iterator[Serving]:
    # Not a daemon: a daemon process may not start the workers; it is stopped below.
    server = mp.get_context("spawn").Process(target=_serve, args=(port, cpus, workers, served))
    server.start()
    assert server.pid is not None
    try:
        yield Serving(server.pid, lambda: server.exitcode, None)
    finally:
        server.terminate()
        server.join(30)


@contextlib.contextmanager
def _viewstats_collector(served: Server, port: int, cpus: set[int],
                         workers: int) -> Iterator[Serving]:
    """`viewstats collector` on a fresh data dir, into Kafka (acks=all, a topic of its own)
    or into the embedded database (migrated first, as `viewstats collector` expects); or
    `viewstats run`, the whole platform on the embedded database, as `make run` starts it."""
    assert workers == 1  # each worker would open the data dir's database, which one owns
    env = {name: value for name, value in os.environ.items() if name not in FOREIGN}
    env["GEOIP_DB"] = served.geoip
    if served.sink == "kafka":
        assert served.bootstrap is not None
        env |= {"KAFKA_BOOTSTRAP_SERVERS": served.bootstrap,
                "VIEWSTATS_TOPIC": f"bench-collector-{uuid.uuid4().hex[:12]}"}

    def pinned() -> None:
        os.sched_setaffinity(0, cpus)

    with tempfile.TemporaryDirectory(prefix=f"bench-collector-{served.sink}-") as data, \
            open(Path(data) / "collector.log", "wb") as log:
        # A Kafka-mode collector refuses to start without a provisioned secret.
        env["VIEWER_KEY_FILE"] = str(shared_viewer_key(Path(data)))
        # Its log (a JSON line per start and stop) to a file, so progress stays readable.
        options: dict[str, Any] = {"env": env, "cwd": served.source, "preexec_fn": pinned,
                                   "stdin": subprocess.DEVNULL, "stdout": log,
                                   "stderr": subprocess.STDOUT}
        if served.sink == "embedded":
            subprocess.run([*VIEWSTATS, "migrate", "--data-dir", data], check=True, **options)
        role = "run" if served.sink == "run" else "collector"  # `run` migrates first itself
        proc = subprocess.Popen([*VIEWSTATS, role, "--host", "127.0.0.1", "--port", str(port),
                                 "--data-dir", data], **options)
        try:
            yield Serving(proc.pid, proc.poll, Path(log.name))
        finally:
            stop(proc)


def _serve(port: int, cpus: set[int], workers: int, server: Server) -> None:
    """The counting server process, on `cpus`: one collector, or a supervisor of `workers`."""
    os.sched_setaffinity(0, cpus)  # spawned workers inherit it
    if workers == 1:
        _serve_collector(server, port, None)
    else:
        from viewstats.workers import serve_workers
        sys.exit(serve_workers(workers, "127.0.0.1", port,
                               functools.partial(_serve_collector, server, port)))


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


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the supervisor's workers)."""
    return sum(map(cpu_seconds, [pid, *_children(pid)]))


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


def accepted(port: int) -> float:
    """viewstats_events_accepted from /metrics: one process's, or summed over the workers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
        text = answer.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == ACCEPTED)
