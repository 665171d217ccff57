"""`--workers N`: N processes serve one port, under a small supervisor (architecture §8).

The supervisor binds N listening sockets to the same address with SO_REUSEPORT, one per worker
slot, and starts a worker process per slot (multiprocessing's spawn: a fresh interpreter, so
nothing of the supervisor's state leaks in). Each worker builds its role's app itself, with its
own Kafka producer, consumer and database pool, and serves it through the same uvicorn server
and bounded HTTP protocol as a single process. The kernel spreads new connections evenly over
the sockets (by a hash of their addresses), where on one shared socket whichever process wakes
first would accept, however busy it is. A slot's
socket stays open in the supervisor while its worker restarts, so the connections the kernel
hands that slot meanwhile wait in its backlog instead of being refused.

- SIGTERM or SIGINT: the supervisor closes its copies of the sockets and sends SIGTERM to every
  worker: each stops taking connections, answers what it has, runs its shutdown (flush,
  commit) and exits. The supervisor exits 0 once all did so cleanly, else 1.
- A worker that exits on its own (killed, crashed: 1 and a traceback for a bug) is started
  again in its slot. One that exits with 2 (configuration or environment: a bad setting, an
  unreachable database or Kafka, no GeoIP database) or 3 (its startup failed) would fail again,
  and so would the others: they share the settings, the services and the host. Then, and after
  more than MAX_RESTARTS restarts in RESTART_WINDOW_S, the supervisor stops the others and
  exits (with that code, else 1), leaving the next try, and its backoff, to the orchestrator.
- A worker whose supervisor dies, even by SIGKILL, stops as on SIGTERM: no orphan keeps the port.
- /metrics: prometheus_client's multiprocess mode. Each worker writes its values to files in
  PROMETHEUS_MULTIPROC_DIR (when set: an existing directory of its own, emptied at start; else
  a temporary one, removed at exit); /metrics, answered by any worker, sums counters and
  histograms over all workers, exited ones included, and shows gauges per live worker, with a
  `pid` label.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

# A worker's serving function: given its slot's listening socket, serve until SIGTERM and
# return the process's exit code. It crosses into the worker by pickling (a module-level
# function, or a functools.partial of one).
Serve = Callable[[socket.socket], int]

CONFIGURATION_ERROR, STARTUP_FAILURE = 2, 3  # as `viewstats` and uvicorn exit
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
BACKLOG = 2048  # uvicorn's default
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SPAWN = multiprocessing.get_context("spawn")


def serve_workers(count: int, host: str, port: int, serve: Serve) -> int:
    """Run `serve` in `count` worker processes sharing host:port; return the exit code."""
    try:
        sockets = listening_sockets(host, port, count)
    except OSError as exc:  # as uvicorn reports a port it cannot bind
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return STARTUP_FAILURE
    log.info("%d workers on %s:%d", count, host, sockets[0].getsockname()[1])
    try:
        with _metrics_dir() as metrics:
            return _Supervisor(sockets, serve, metrics).run()
    finally:
        for sock in sockets:
            sock.close()


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets listening on host:port together (port 0: a free port, the same for all).

    The port must be free as a plain bind sees it: with SO_REUSEPORT alone a second supervisor
    of the same user would silently join this one's group and take half its connections.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Supervisor:
    def __init__(self, sockets: list[socket.socket], serve: Serve, metrics: Path) -> None:
        self._sockets, self._serve, self._metrics = sockets, serve, metrics
        self._workers: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._restarts: deque[float] = deque()

    def run(self) -> int:
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            self._workers = [self._start(slot) for slot in range(len(self._sockets))]
            code = self._watch()
        finally:
            stopped = self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code or stopped

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        log.info("%s: stopping the workers", signal.Signals(signum).name)
        self._stopping.set()

    def _start(self, slot: int) -> BaseProcess:
        worker = _SPAWN.Process(target=_worker_main, args=(self._serve, self._sockets[slot]),
                                name=f"viewstats-worker-{slot}")
        worker.start()
        log.info("worker %d started: pid %d", slot, worker.pid)
        return worker

    def _watch(self) -> int:
        """Restart workers that exit on their own until a signal; the code to exit with."""
        while not self._stopping.is_set():
            # A short timeout: the signal handler only sets the event.
            wait([worker.sentinel for worker in self._workers], timeout=0.5)
            for slot, worker in enumerate(self._workers):
                code = worker.exitcode
                if code is None or self._stopping.is_set():
                    continue
                self._forget_gauges(worker.pid)
                if code in (CONFIGURATION_ERROR, STARTUP_FAILURE):
                    log.error("worker %d (pid %d) exited with %d before serving; stopping",
                              slot, worker.pid, code)
                    return code
                if not self._may_restart():
                    log.error("worker %d (pid %d) exited with %d, the %dth restart within "
                              "%g s; stopping", slot, worker.pid, code, MAX_RESTARTS + 1,
                              RESTART_WINDOW_S)
                    return 1
                log.warning("worker %d (pid %d) exited with %d; starting it again",
                            slot, worker.pid, code)
                self._workers[slot] = self._start(slot)
        return 0

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
            self._restarts.popleft()
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS

    def _forget_gauges(self, pid: int | None) -> None:
        # A gauge is a live process's state; the exited one's counters stay in the sums.
        for path in self._metrics.glob(f"gauge_*_{pid}.db"):
            path.unlink(missing_ok=True)

    def _stop_all(self) -> int:
        for sock in self._sockets:  # the workers' copies keep listening until they stop
            sock.close()
        for worker in self._workers:
            if worker.exitcode is None:
                worker.terminate()  # SIGTERM: drain, flush, exit
        for worker in self._workers:
            worker.join()
        codes = [worker.exitcode for worker in self._workers]
        log.info("workers stopped, exit codes %s", codes)
        return 0 if all(code == 0 for code in codes) else 1


@contextlib.contextmanager
def _metrics_dir() -> Iterator[Path]:
    """The directory of the workers' metric files, set in the environment they inherit."""
    if given := os.environ.get(METRICS_DIR_ENV):
        path = Path(given)
        # A previous run's files would be summed in; so would this process's own (with the
        # variable set, prometheus_client made them when the metrics were imported).
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="viewstats-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        del os.environ[METRICS_DIR_ENV]
        shutil.rmtree(path, ignore_errors=True)


def metrics_in_files() -> bool:
    """Whether this process's metrics live in PROMETHEUS_MULTIPROC_DIR's files: a worker's do
    (and a single process's, when an operator sets the variable)."""
    return METRICS_DIR_ENV in os.environ


async def all_workers_metrics(_: Request) -> Response:
    """/metrics of a worker: every worker's series, read from their files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _worker_main(serve: Serve, sock: socket.socket) -> None:
    # Until uvicorn installs its handlers, a stop request finds nothing to drain.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_before_serving)
    threading.Thread(target=_stop_with_supervisor, name="supervisor-watch", daemon=True).start()
    sys.exit(serve(sock))


def _exit_before_serving(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


def _stop_with_supervisor() -> None:
    supervisor = multiprocessing.parent_process()
    if supervisor is not None:
        supervisor.join()
        os.kill(os.getpid(), signal.SIGTERM)
