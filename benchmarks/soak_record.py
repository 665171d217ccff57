"""What the soak (benchmarks.soak) records once a second: each process's RSS, open file
descriptors and threads (from /proc), the consumer group's lag (from Kafka), the answers' p99
and the beacons' counts. Rows go to a CSV as they are taken, so a run cut short keeps them.

The lag is the topic's end offsets minus the group's committed offsets, summed over partitions,
as Kafka reports them (an admin client and a consumer outside the group). The consumer's own
`viewstats_consumer_lag` gauge is set only when a fetch returns records, so a consumer that
stalls would keep showing its last value; the committed offsets do not flatter it. While the
broker is away the lag is unknown (an empty cell).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

PROBE_TIMEOUT_S = 3.0
Row = dict[str, Any]


def proc_stats(pid: int) -> tuple[int, int, int] | None:
    """RSS in bytes, open file descriptors and threads of `pid`; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # a zombie: exited, not reaped yet
        return None
    return int(fields["VmRSS"].split()[0]) * 1024, fds, int(fields["Threads"])


class LagProbe:
    """The group's lag on `topic`, asked of Kafka; clients made again after any failure (a
    client that lived through a broker outage is not what is measured here)."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.lag: int | None = None
        self.at = 0.0  # when `lag` was measured (monotonic)
        self._admin: Any = None
        self._consumer: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.lag = await asyncio.wait_for(self._measure(), PROBE_TIMEOUT_S)
                self.at = time.monotonic()
            except Exception:  # the broker is away or restarting: unknown, try afresh
                self.lag = None
                await self._close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        await self._close()

    def latest(self, max_age_s: float = 2.5) -> int | None:
        return self.lag if time.monotonic() - self.at <= max_age_s else None

    async def _measure(self) -> int:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                              request_timeout_ms=2_000)
            await self._admin.start()
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                              request_timeout_ms=2_000)
            await self._consumer.start()
        (described,) = await self._admin.describe_topics([self.topic])
        partitions = [TopicPartition(self.topic, p["partition"])
                      for p in described["partitions"]]
        if not partitions:
            raise RuntimeError(f"no partitions of {self.topic} (yet)")
        ends = await self._consumer.end_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(self.group)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return int(sum(end - done.get(tp, 0) for tp, end in ends.items()))

    async def _close(self) -> None:
        for client, stop_it in ((self._consumer, "stop"), (self._admin, "close")):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(getattr(client, stop_it)(), PROBE_TIMEOUT_S)
        self._admin = self._consumer = None


class Timeseries:
    """Rows of one sample a second, written to `path` (CSV) as they come."""

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        self.path, self.labels = path, labels
        self.rows: list[Row] = []
        per_process = [f"{label}_{name}" for label in labels
                       for name in ("pid", "rss_mb", "fds", "threads")]
        self.columns = ["t_s", "time", *per_process, "lag", "p99_ms", "answers_in_window",
                        "beacons_acked", "beacons_resent", "beacons_pending", "fault",
                        "late_ms"]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(path, "w", newline="")  # noqa: SIM115 (closed by close())
        self._writer = csv.DictWriter(self._file, self.columns)
        self._writer.writeheader()

    def sample(self, t_s: float, pids: Mapping[str, int | None], extra: Row) -> Row:
        row: Row = {"t_s": round(t_s, 2), "time": time.strftime("%H:%M:%S")}
        for label in self.labels:
            pid = pids.get(label)
            stats = proc_stats(pid) if pid is not None else None
            if stats is not None:
                row.update({f"{label}_pid": pid, f"{label}_rss_mb": round(stats[0] / 2**20, 1),
                            f"{label}_fds": stats[1], f"{label}_threads": stats[2]})
        row.update(extra)
        self.rows.append(row)
        self._writer.writerow(row)
        self._file.flush()
        return row

    def close(self) -> None:
        self._file.close()


async def every_second(stop: asyncio.Event, take: Callable[[float], None]) -> None:
    """Call `take(late_s)` once a second, on the second of the start, until `stop`; `late_s`
    is how late the call is (this process's loop was busy: its figures suffer too). A second
    missed is skipped, not made up in a burst."""
    started = time.monotonic()
    tick = 0
    while not stop.is_set():
        take(time.monotonic() - (started + tick))
        # A timer may fire a little early: the next tick is never the one just taken.
        tick = max(tick + 1, int(time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, started + tick - time.monotonic()))


def progress_line(row: Row, labels: tuple[str, ...]) -> str:
    """One line of progress from a row: the counts, the lag, the p99, each process's MB/fds."""
    def value(key: str, unit: str = "") -> str:
        return "-" if row.get(key) is None else f"{row[key]:g}{unit}"

    procs = " ".join(f"{label} {value(f'{label}_rss_mb')}/{value(f'{label}_fds')}"
                     for label in labels)
    return (f"{row['t_s'] / 60:5.1f} min: acked {row['beacons_acked']:,} resent "
            f"{row['beacons_resent']} pending {row['beacons_pending']} | lag "
            f"{value('lag')} | p99 {value('p99_ms', ' ms')} | MB/fds {procs}"
            + (f" | fault {row['fault']}" if row["fault"] else ""))
