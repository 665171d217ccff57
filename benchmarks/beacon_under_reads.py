"""Beacon latency alone and while the largest answers are read (issue 19): a single-event
`POST /events` to `viewstats run` (embedded chDB) must not wait behind reads.

    python -m benchmarks.beacon_under_reads --data-dir data-beacons --events 1e7 \
        --out benchmarks/results/beacon_under_reads.json

On data made by benchmarks.generate (`--events` generates that many into the data dir first;
1e7 take about two minutes on 2 cores), one `viewstats run` (from `--api-source` when given, e.g.
a checkout of the previous code) is sent beacons one at a time, each a new view: `--seconds`
alone, then as long again while `--readers` connections each read, one after another, the
heaviest client's views with every group field (host, country, event, id) per hour, the
request of the issue's finding 1, over:
- `allowed`: the longest window ending on the data's last day whose answer holds at most
  `--max-rows` rows (QUERY_MAX_ROWS, the API's default cap): the largest answer it serves;
- `unbounded`: all time, as the finding asked it (an answer far past the cap, so a 422 from
  code with the cap; the engine still counts it all).
Each phase reports the beacons' p50/p99 and the reads' answers; the server's RSS is sampled
throughout (before the reads, and the peak while they run). Reads run in a process of their
own, so that receiving large answers never delays the beacons' own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.generate import generate
from benchmarks.http_load import percentile, run_load
from benchmarks.record import write_result
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import open_storage
from viewstats.devtools.processes import serving
from viewstats.schema.migrations import migrate

VIEWS = "/streaming/statistics/views"
GROUPS = "host,country,event,id"
BEACONS = 20_000  # distinct views made ahead, more than a run sends
# The beacons' client: none of benchmarks.generate's, so that runs on the same data read the
# same answers.
BEACON_CLIENT = 4_000_000_000


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _heaviest_and_allowed(data_dir: Path, max_rows: int,
                          events: float | None) -> tuple[int, str, str, int]:
    """The heaviest client, and the longest window of whole days ending on the data's last
    day whose hourly answer by every group field has at most `max_rows` rows (and how many);
    `events` are generated first when given."""
    storage = open_storage(Settings.from_env(data_dir=data_dir))
    try:
        if events:
            migrate(storage)
            generate(storage, int(events), clients=20_000, chunk=20_000_000)
        if not storage.query("SELECT 1 FROM player_events LIMIT 1"):
            raise SystemExit(f"no events in {data_dir}: give --events or run benchmarks.generate")
        client = int(storage.query("SELECT client_id FROM player_events GROUP BY client_id "
                                   "ORDER BY count() DESC, client_id LIMIT 1")[0][0])
        # Hours never cross days, so the answer's rows are the sum of each day's.
        days = storage.query(
            "SELECT toString(toDate(ts)) AS d, uniqExact(toStartOfHour(ts), type, host, country,"
            " event, video_id) FROM player_events WHERE client_id = {c:UInt32} GROUP BY d "
            "ORDER BY d DESC", {"c": client})
    finally:
        storage.close()
    rows, first = 0, str(days[0][0])
    for day, count in days:
        if rows + int(count) > max_rows:
            break
        rows, first = rows + int(count), str(day)
    return client, first, str(days[0][0]), rows


def _beacon(port: int) -> bytes:
    body = orjson.dumps({"event": "watch", "client_id": BEACON_CLIENT, "video_id": "v-beacon",
                         "type": "vod", "view_id": str(uuid.uuid4())})
    return (f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _read_loop(base: str, path: str, headers: dict[str, str], readers: int, seconds: float,
               out: Any) -> None:
    """In a process of its own: `readers` connections read `path` until `seconds` passed."""
    deadline = time.monotonic() + seconds

    def reader() -> list[tuple[int, int, float]]:
        answers = []
        with httpx.Client(base_url=base, timeout=600) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                answers.append((response.status_code, len(response.content),
                                (time.perf_counter() - started) * 1000))
        return answers

    with ThreadPoolExecutor(readers) as threads:
        out.put([a for f in [threads.submit(reader) for _ in range(readers)]
                 for a in f.result()])


class _Rss:
    """The server's resident memory, sampled every 0.1 s; `mark()` starts a new phase."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self.samples: list[tuple[str, int]] = []
        self._phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                text = self._path.read_text()
            except OSError:
                return
            kb = int(text.split("VmRSS:")[1].split()[0])
            self.samples.append((self._phase, kb * 1024))

    def mark(self, phase: str) -> None:
        self._phase = phase

    def peak(self, phase: str) -> int:
        return max((b for p, b in self.samples if p == phase), default=0)

    def last(self, phase: str) -> int:
        return next((b for p, b in reversed(self.samples) if p == phase), 0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _beacons(port: int, seconds: float) -> dict[str, Any]:
    requests = [_beacon(port) for _ in range(BEACONS)]
    load = asyncio.run(run_load("127.0.0.1", port, requests, concurrency=1, seconds=seconds))
    return {"beacons": len(load.latencies_ms), "statuses": load.statuses,
            "p50_ms": percentile(load.latencies_ms, 50),
            "p90_ms": percentile(load.latencies_ms, 90),
            "p99_ms": percentile(load.latencies_ms, 99), "max_ms": max(load.latencies_ms)}


@contextmanager
def _platform(args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    env = {"QUERY_MAX_ROWS": str(args.max_rows)}
    with serving("run", args.data_dir.resolve(), env=env, cwd=args.api_source) as (base, proc):
        yield base, proc.pid


def _phase(name: str, args: argparse.Namespace, base: str, port: int, rss: _Rss,
           read: tuple[str, dict[str, str]] | None) -> dict[str, Any]:
    rss.mark(name)
    reads: Any = None
    if read is not None:
        reads = multiprocessing.get_context("spawn").Queue()
        proc = multiprocessing.get_context("spawn").Process(
            target=_read_loop, args=(base, *read, args.readers, args.seconds, reads))
        proc.start()
        time.sleep(args.settle)  # every reader has its first request in
    beacons = _beacons(port, args.seconds)
    result: dict[str, Any] = {"phase": name, **beacons}
    if read is not None:
        answers = reads.get()
        proc.join()
        statuses: dict[str, int] = {}
        for status, _, _ in answers:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        result.update(reads=len(answers), read_statuses=statuses,
                      read_bytes_max=max(size for _, size, _ in answers),
                      read_p50_ms=percentile([ms for *_, ms in answers], 50))
    result["rss_peak_bytes"] = rss.peak(name)
    _progress(f"{name:>10}: {beacons['beacons']} beacons p50 {beacons['p50_ms']:.1f} ms "
              f"p99 {beacons['p99_ms']:.1f} ms; RSS peak {rss.peak(name) / 2**20:,.0f} MB"
              + (f"; reads {result['reads']} {result['read_statuses']}" if read else ""))
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    client, first, last, rows = _heaviest_and_allowed(args.data_dir, args.max_rows, args.events)
    _progress(f"client {client}: {first}..{last} answers {rows} rows (cap {args.max_rows})")
    _, token = create_key(args.data_dir / "api_keys", client)
    headers = {"Authorization": f"apikey {token}"}
    windows = {
        "allowed": f"date_from={first}&date_to={last}",
        "unbounded": "date_from=1970-01-01&date_to=2099-12-31"}
    phases = []
    with _platform(args) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        rss = _Rss(pid)
        try:
            _beacons(port, args.warmup)  # the first inserts and the first read
            httpx.get(f"{base}{VIEWS}?{windows['allowed']}", headers=headers, timeout=600)
            phases.append(_phase("alone", args, base, port, rss, None))
            before = rss.last("alone")
            for name in args.reads:
                path = f"{VIEWS}?{windows[name]}&granularity=1h&group={GROUPS}"
                phases.append(_phase(name, args, base, port, rss, (path, headers)))
        finally:
            rss.stop()
    alone = phases[0]
    for phase in phases:
        phase.update(p99_vs_alone=phase["p99_ms"] / alone["p99_ms"],
                     p50_vs_alone=phase["p50_ms"] / alone["p50_ms"],
                     rss_over_before_bytes=phase["rss_peak_bytes"] - before)
    return {"client": client, "allowed_window": [first, last], "allowed_rows": rows,
            "max_rows": args.max_rows, "readers": args.readers, "seconds": args.seconds,
            "api_source": str(args.api_source or "this checkout"), "label": args.label,
            "rss_before_bytes": before, "phases": phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data-bench"),
                        help="embedded data dir made by benchmarks.generate")
    parser.add_argument("--events", type=float, default=None,
                        help="generate this many events into the data dir first")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="beacons sent per phase, in seconds (60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured beacons, s (3)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds the readers start ahead of the beacons (1)")
    parser.add_argument("--readers", type=int, default=8, help="concurrent reads (8)")
    parser.add_argument("--max-rows", type=int, default=Settings().query_max_rows,
                        help="the cap the server runs with and the allowed window fits "
                             f"(QUERY_MAX_ROWS, {Settings().query_max_rows})")
    parser.add_argument("--reads", nargs="+", choices=("allowed", "unbounded"),
                        default=["allowed", "unbounded"], help="what the readers ask (both)")
    parser.add_argument("--api-source", type=Path, default=None,
                        help="a checkout whose code `viewstats run` runs (default: this one)")
    parser.add_argument("--label", default="", help="what the code is, for the report")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = parser.parse_args(argv)
    result = measure(args)
    if args.out:
        write_result(args.out, {"benchmark": "beacon_under_reads", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
