"""End-to-end freshness: from a beacon's acknowledgement to its view in the API (architecture §10:
p99 <= 2 s).

    python -m benchmarks.freshness --out benchmarks/results/freshness.json
    python -m benchmarks.freshness --kafka --out benchmarks/results/freshness_kafka.json

Starts `viewstats run` on a temporary data dir: the embedded write path by default, or with
`--kafka` the Kafka one (collector -> broker -> the run's own consumer), on a private broker
started here or on `--bootstrap`. Then, one beacon at a time: a `watch` of a new view is posted
(its 202 is the acknowledgement), and the countries endpoint is polled, `--poll-ms` apart, until
the client's total views have grown by one. The delay ends when the answer showing the view
arrives, so it overstates the true one by at most one pause and two queries. `--warmup`
beacons go first, unmeasured (the Kafka consumer joins its group then), and a random pause
before each beacon keeps it from falling in step with the batchers' timers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks.broker import kafka_bootstrap
from benchmarks.http_load import percentile
from benchmarks.record import write_result
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.devtools.processes import serving
from viewstats.devtools.topics import create_topic

CLIENT = 1  # the data dir is this run's own, so any client will do
COUNTRIES = "/streaming/statistics/countries"


class Api:
    """The running platform as a player and a dashboard see it."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self._http = http
        today = datetime.now(UTC).date()
        # A window around now: the events carry the collector's clock.
        self._query = {"date_from": (today - timedelta(days=1)).isoformat(),
                       "date_to": (today + timedelta(days=1)).isoformat()}
        self._headers = {"Authorization": f"apikey {token}"}

    def watch(self) -> None:
        view = {"event": "watch", "client_id": CLIENT, "video_id": "v-freshness",
                "type": "vod", "view_id": str(uuid.uuid4())}
        response = self._http.post("/events", json=view)
        if response.status_code != 202:
            raise SystemExit(f"the beacon was answered {response.status_code}: {response.text}")

    def views(self) -> int:
        response = self._http.get(COUNTRIES, params=self._query, headers=self._headers)
        if response.status_code != 200:
            raise SystemExit(f"the API answered {response.status_code}: {response.text}")
        return sum(int(row["views"]) for row in response.json()["data"])


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measure(api: Api, args: argparse.Namespace) -> tuple[list[float], list[float], int]:
    """(freshness delays in ms, acknowledgement times in ms, beacons never seen in time)."""
    delays: list[float] = []
    acks: list[float] = []
    missing = 0
    expected = api.views()
    for n in range(-args.warmup, args.beacons):
        time.sleep(random.uniform(0, args.pause_ms / 1000))
        sent = time.perf_counter()
        api.watch()
        acked = time.perf_counter()
        expected += 1
        # Counted up to `expected`, not `before + 1`: a view that showed up late is then
        # waited for by the next beacon instead of being taken for it.
        while (seen := api.views()) < expected:
            if time.perf_counter() - acked > args.timeout:
                break
            time.sleep(args.poll_ms / 1000)
        visible = time.perf_counter()
        if n < 0:
            continue
        if seen < expected:
            missing += 1
            _progress(f"beacon {n + 1}: not visible after {args.timeout} s")
            continue
        delays.append((visible - acked) * 1000)
        acks.append((acked - sent) * 1000)
        if (n + 1) % max(1, args.beacons // 10) == 0:
            _progress(f"{n + 1}/{args.beacons} beacons; last visible {delays[-1]:.0f} ms after "
                      "its acknowledgement")
    return delays, acks, missing


@contextmanager
def _platform(args: argparse.Namespace, data: Path) -> Iterator[str]:
    """`viewstats run` on `data` (with Kafka when asked); yields its base URL."""
    with ExitStack() as stack:
        env = {"GEOIP_DB": str(args.geoip)}
        if args.kafka:
            bootstrap = stack.enter_context(kafka_bootstrap(args.bootstrap))
            topic = f"freshness-{uuid.uuid4().hex[:8]}"
            asyncio.run(create_topic(bootstrap, topic, args.partitions))
            env |= {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "VIEWSTATS_TOPIC": topic,
                    "VIEWSTATS_CONSUMER_GROUP": f"group-{topic}"}
        base, _ = stack.enter_context(serving("run", data, env=env))
        yield base


def _summary(delays: list[float], acks: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(delays, 50), "p99_ms": percentile(delays, 99),
            "max_ms": max(delays), "mean_ms": sum(delays) / len(delays),
            "ack_p50_ms": percentile(acks, 50), "ack_p99_ms": percentile(acks, 99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beacons", type=int, default=200, help="measured beacons (200)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured beacons first (3)")
    parser.add_argument("--poll-ms", type=float, default=5, help="pause between polls (5)")
    parser.add_argument("--pause-ms", type=float, default=100,
                        help="random pause before each beacon, up to this (100)")
    parser.add_argument("--timeout", type=float, default=30,
                        help="seconds a beacon may take to show before it counts as missing "
                             "(30)")
    parser.add_argument("--kafka", action="store_true",
                        help="through Kafka and the consumer (default: the embedded path)")
    parser.add_argument("--bootstrap",
                        help="with --kafka: an existing broker (default: start one here)")
    parser.add_argument("--partitions", type=int, default=4,
                        help="with --kafka: partitions of the run's topic (4)")
    parser.add_argument("--geoip", type=Path, default=Settings.from_env().geoip_path,
                        help="GeoIP database of the platform (default $GEOIP_DB or data/geoip)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.beacons < 1:
        parser.error("--beacons must be at least 1")
    path = "kafka" if args.kafka else "embedded"
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        data = Path(tmp) / "data"
        _, token = create_key(data / "api_keys", CLIENT)
        with _platform(args, data) as base, httpx.Client(base_url=base, timeout=30) as http:
            _progress(f"viewstats run ({path} path) at {base}")
            delays, acks, missing = measure(Api(http, token), args)
    if not delays:
        print(f"no beacon became visible within {args.timeout} s", file=sys.stderr)
        return 1
    result = {"benchmark": "freshness", "path": path, "beacons": len(delays) + missing,
              "missing": missing, "poll_ms": args.poll_ms, **_summary(delays, acks)}
    print(f"{path}: {len(delays)} beacons visible after their acknowledgement in p50 "
          f"{result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, max "
          f"{result['max_ms']:.0f} ms ({args.poll_ms:g} ms between polls); {missing} not "
          f"visible within {args.timeout:g} s; acknowledgement p50 {result['ack_p50_ms']:.1f} ms")
    if args.out:
        write_result(args.out, result)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
