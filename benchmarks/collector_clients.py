"""The client side of benchmarks.collector_throughput: its load processes, closed loop
(benchmarks.http_load) and open loop (benchmarks.open_loop), pinned to the CPUs the server
leaves, and the samples of both sides' CPU time and answers over the measured window.

Client processes count answers in shared memory, read while the run goes on (progress each
second), and send their answers' timings back when they end; CLOCK_MONOTONIC is one clock for
every process, so the parent's window selects them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import multiprocessing as mp
import os
import sys
import time
from array import array
from collections.abc import Callable
from ctypes import c_double, c_longlong
from multiprocessing.queues import SimpleQueue
from typing import NamedTuple, cast

from benchmarks.beacons import Beacons
from benchmarks.collector_server import Server, Serving, accepted, cpu_seconds, tree_cpu_seconds
from benchmarks.http_load import run_load
from benchmarks.open_loop import Timings, Window, run_open_loop, window

Counter = c_longlong  # shared memory, written by one client process, read by the parent
TEMPLATES = 4096


def _counter(status: int, ok: Counter, failed: Counter) -> None:
    if status == 202:
        ok.value += 1
    else:
        failed.value += 1


def _drive(port: int, cpus: set[int], connections: int, seconds: float, seed: int,
           ok: Counter, failed: Counter, started: c_double,
           out: SimpleQueue[tuple[array[float], array[float]]]) -> None:
    """A closed-loop client process: `connections` beacon loops until `seconds` have passed;
    sends back when (monotonic) each answer came and its latency in ms."""
    os.sched_setaffinity(0, cpus)
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        began = started.value = time.monotonic()
        load = runner.run(run_load("127.0.0.1", port, Beacons(port, TEMPLATES, seed),
                                   concurrency=connections, seconds=seconds,
                                   on_answer=lambda status: _counter(status, ok, failed)))
    out.put((array("d", (began + answer.at_s for answer in load.answers)),
             array("d", load.latencies_ms)))


def _drive_open(port: int, cpus: set[int], rate: float, seconds: float, drain_s: float,
                connections: int, max_connections: int, seed: int, ok: Counter,
                failed: Counter, started: c_double, out: SimpleQueue[Timings]) -> None:
    """An open-loop client process: beacons at `rate` per second for `seconds`."""
    os.sched_setaffinity(0, cpus)

    def begin(at: float) -> None:
        started.value = at

    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        timings = runner.run(run_open_loop(
            "127.0.0.1", port, Beacons(port, TEMPLATES, seed), rate=rate, seconds=seconds,
            drain_s=drain_s, connections=connections, max_connections=max_connections,
            on_answer=lambda status: _counter(status, ok, failed), started=begin))
    out.put(timings)


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
    source: str | None  # the server's checkout: None for this one
    workers: int
    rate: float | None  # open loop's arrivals per second; None: closed loop
    seconds: float
    beacons: int  # 202 answers in the measured window
    server_cpu: float  # CPU seconds
    clients_cpu: float
    failed: int  # answers other than 202, warm-up included (closed loop)
    accepted: float  # events the collector accepted (its /metrics), warm-up included
    latencies_ms: list[float]  # closed loop: of the answers in the window
    window: Window | None  # open loop


class _Clients(NamedTuple):
    """The client processes of one measurement and their progress counters."""

    processes: list[mp.process.BaseProcess]
    counters: list[tuple[Counter, Counter]]

    def start(self, started: list[c_double]) -> float:
        """Start the processes; when (monotonic) the last began its run, each telling it in
        `started`: a process starts slowly on a busy machine, and its start is no load."""
        for process in self.processes:
            process.start()
        while not all(value.value for value in started):
            if any(process.exitcode is not None for process in self.processes):
                sys.exit("a client process exited before it started; see its errors above")
            time.sleep(0.01)
        return max(value.value for value in started)

    def sample(self, server: Serving) -> Sample:
        return Sample(time.monotonic(), sum(ok.value for ok, _ in self.counters),
                      sum(failed.value for _, failed in self.counters),
                      tree_cpu_seconds(server.pid),
                      sum(cpu_seconds(p.pid) for p in self.processes if p.pid is not None))


def _watch(server: Serving, clients: _Clients, start: float, seconds: float) -> tuple[Sample,
                                                                                      Sample]:
    """Samples at monotonic `start` and `seconds` later, with progress each second."""
    time.sleep(max(0.0, start - time.monotonic()))
    first = last = clients.sample(server)
    if first.ok == 0:
        state = "running" if (code := server.exit_code()) is None else f"exited with {code}"
        sys.exit("no beacon was answered during the warm-up; see the errors above, and the "
                 f"server's ({state}) output: {server.output()}")
    while last.at - first.at < seconds - 1e-3:
        time.sleep(min(1.0, seconds - (last.at - first.at)))
        now = clients.sample(server)
        wall = now.at - last.at
        print(f"  t={now.at - first.at:5.1f}s  {(now.ok - last.ok) / wall:9,.0f} beacons/s  "
              f"server CPU {100 * (now.server_cpu - last.server_cpu) / wall:4.0f}%  "
              f"clients CPU {100 * (now.clients_cpu - last.clients_cpu) / wall:4.0f}%",
              file=sys.stderr, flush=True)
        last = now
    return first, last


def closed(served: Server, server: Serving, port: int, workers: int, client_cpus: set[int],
           args: argparse.Namespace) -> Run:
    """Closed loop: `args.clients` processes of `args.connections` connections each."""
    spawn = mp.get_context("spawn")
    out: SimpleQueue[tuple[array[float], array[float]]] = spawn.SimpleQueue()
    counters = [(spawn.RawValue(c_longlong, 0), spawn.RawValue(c_longlong, 0))
                for _ in range(args.clients)]
    started = [spawn.RawValue(c_double, 0.0) for _ in range(args.clients)]
    clients = _Clients([spawn.Process(target=_drive, daemon=True, args=(
        port, client_cpus, args.connections, args.warmup + args.seconds + 1, seed,
        ok, failed, began, out)) for seed, ((ok, failed), began) in enumerate(
            zip(counters, started, strict=True))], counters)
    print(f"  closed loop: {args.clients} client process(es) x {args.connections} connections",
          file=sys.stderr, flush=True)
    first, last = _watch(server, clients, clients.start(started) + args.warmup, args.seconds)
    answers = [out.get() for _ in clients.processes]
    for client in clients.processes:
        client.join()
    latencies = [ms for at, latency in answers for ms, when in zip(latency, at, strict=True)
                 if first.at <= when < last.at]
    return Run(served.sink, served.source, workers, None, last.at - first.at, last.ok - first.ok,
               max(last.server_cpu - first.server_cpu, 1e-9),
               last.clients_cpu - first.clients_cpu, last.failed, accepted(port), latencies,
               None)


# Every run against one server sends views of its own: the closed loop's client processes use
# seeds from 0, and a view id sent again would be dropped by the embedded writer's dedup window,
# answered 202 without an insert. Below 4096: a seed's bits 12-15 would be uuid4's version.
_OPEN_LOOP_SEEDS = itertools.count(2048)


def open_loop(served: Server, server: Serving, port: int, workers: int, client_cpus: set[int],
              rate: float, args: argparse.Namespace) -> Run:
    """Open loop: one process sending `rate` beacons per second."""
    spawn = mp.get_context("spawn")
    out: SimpleQueue[Timings] = spawn.SimpleQueue()
    ok, failed = spawn.RawValue(c_longlong, 0), spawn.RawValue(c_longlong, 0)
    started = spawn.RawValue(c_double, 0.0)
    # The schedule runs on past the window, so that its end is measured under the same load.
    client = spawn.Process(target=_drive_open, daemon=True, args=(
        port, client_cpus, rate, args.warmup + args.seconds + 0.5, args.drain,
        args.connections, args.max_connections, next(_OPEN_LOOP_SEEDS), ok, failed, started,
        out))
    print(f"  open loop: {rate:,g} beacons/s", file=sys.stderr, flush=True)
    clients = _Clients([client], [(ok, failed)])
    first, last = _watch(server, clients, clients.start([started]) + args.warmup, args.seconds)
    timings = out.get()
    client.join()
    measured = window(timings, first.at - timings.started, last.at - timings.started)
    return Run(served.sink, served.source, workers, rate, last.at - first.at, measured.answered_202,
               max(last.server_cpu - first.server_cpu, 1e-9),
               last.clients_cpu - first.clients_cpu, 0, 0.0, [], measured)
