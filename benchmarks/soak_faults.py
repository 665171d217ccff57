"""The soak's faults (benchmarks.soak), one every `every` seconds, in turn:

- `broker`: the broker SIGKILLed, and started again `outage_s` later on its port and log dir;
- `consumer`: the consumer killed with SIGKILL and started again at once, as an orchestrator
  restarts a crashed process (in `run`, the whole process: collector and API go with it);
- `read_only`: the database's data dir read-only for `outage_s` (a read-only bind mount over
  the embedded data dir, or over the ClickHouse endpoint's in `server`; root and `mount`).

A fault's `ended_s` is when its cause is gone: the broker answers again (its own start, 5 s on
a quiet machine, is not the platform's), the killed process is being started again (its start
is the platform's, and counts in its recovery), the mount is removed. `restart_from_s` and
`restart_s`: when the broker's or the process's start began, and how long it took to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.soak_topology import Role, Topology
from viewstats.devtools.mounts import read_only

RETRY_S = 5


@dataclass
class Fault:
    kind: str
    started_s: float  # since the soak's start
    ended_s: float | None = None
    restart_from_s: float | None = None
    restart_s: float | None = None  # the broker's or the process's start, until it answered
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schedule(minutes: float, every_min: float, kinds: tuple[str, ...]) -> list[tuple[float, str]]:
    """(second, kind) of each fault: every `every_min` minutes, the kinds in turn, none at the
    end."""
    count = int((minutes - 1e-9) // every_min)
    return [((n + 1) * every_min * 60, kinds[n % len(kinds)]) for n in range(count)]


@dataclass
class Exit:
    """A platform process that ended by itself, and was started again as an orchestrator
    would."""
    process: str
    at_s: float
    code: int
    log: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Injector:
    def __init__(self, platform: Topology, outage_s: float, clock: Callable[[], float],
                 say: Callable[[str], None]) -> None:
        self.platform, self.outage_s, self.clock, self.say = platform, outage_s, clock, say
        self.faults: list[Fault] = []
        self.exits: list[Exit] = []
        self.active: str = ""

    async def watch(self, stop: asyncio.Event) -> None:
        """Once a second: a platform process that exited by itself is recorded (a finding) and
        started again, as an orchestrator would, so the soak goes on; a process that did not
        start (a fault's restart included) is tried again every RETRY_S."""
        retry_at: dict[Role, float] = {}
        while not stop.is_set():
            for role in self.platform.roles:
                if (code := role.exited()) is not None:
                    self.exits.append(Exit(role.role, self.clock(), code, str(role.log)))
                    self.say(f"{role.role} exited by itself with {code} (see {role.log})")
                    await asyncio.to_thread(role.close)
                if role.down and self.clock() >= retry_at.get(role, 0.0):
                    role.restarting = True
                    try:
                        await asyncio.to_thread(role.start)
                        self.say(f"{role.role} started again")
                    except Exception as exc:
                        self.say(f"{role.role} did not start: {exc!r}; again in {RETRY_S} s")
                        retry_at[role] = self.clock() + RETRY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def run(self, plan: list[tuple[float, str]], stop: asyncio.Event) -> None:
        for at, kind in plan:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at - self.clock()))
            if stop.is_set():
                return
            fault = Fault(kind, self.clock())
            self.faults.append(fault)
            self.active = kind
            self.say(f"fault: {kind}")
            try:
                await {"broker": self._broker, "consumer": self._consumer,
                       "read_only": self._read_only}[kind](fault)
            except Exception as exc:  # recorded, and the soak goes on: the report names it
                fault.error = repr(exc)
                self.say(f"fault {kind} failed: {exc!r}")
            finally:
                self.active = ""
                fault.ended_s = fault.ended_s if fault.ended_s is not None else self.clock()
            self.say(f"fault {kind} over: ended at {fault.ended_s:.0f} s"
                     + (f", restart took {fault.restart_s:.1f} s" if fault.restart_s else ""))

    async def _broker(self, fault: Fault) -> None:
        await asyncio.to_thread(self.platform.broker.kill, signal.SIGKILL)
        await asyncio.sleep(self.outage_s)
        fault.restart_from_s = self.clock()
        fault.restart_s = await asyncio.to_thread(self.platform.broker.start)
        fault.ended_s = self.clock()

    async def _consumer(self, fault: Fault) -> None:
        role = self.platform.consumer
        await asyncio.to_thread(role.kill)
        fault.ended_s = fault.restart_from_s = self.clock()
        await asyncio.to_thread(role.start)
        fault.restart_s = self.clock() - fault.restart_from_s

    async def _read_only(self, fault: Fault) -> None:
        mounted = read_only(self.platform.read_only_path)
        await asyncio.to_thread(mounted.__enter__)
        try:
            await asyncio.sleep(self.outage_s)
        finally:
            await asyncio.to_thread(mounted.__exit__, None, None, None)
            fault.ended_s = self.clock()
