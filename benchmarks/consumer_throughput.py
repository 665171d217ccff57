r"""Kafka -> ClickHouse throughput and memory of one consumer (architecture §10:
>= 250,000 events/s; anonymous memory < 400 MB whatever the backlog; in server mode, with no
chDB loaded, RSS < 300 MB).

    python -m benchmarks.consumer_throughput --events 1000000
    python -m benchmarks.consumer_throughput --events 1000000 --sweep 5000,20000,50000
    python -m benchmarks.consumer_throughput --events 1000000 --bootstrap B --topic T \
        --clickhouse-url http://127.0.0.1:8123

Pre-produces `--events` player events (a real broker: `--bootstrap`, or a private one started
here), then drains them with one `Consumer` into a fresh chDB and prints events/s, the
consumer's CPU use, its peak RSS and its peak anonymous memory (sampled every 50 ms). `--topic`
drains a topic an earlier run produced (its name is printed) instead, so that runs of two
versions of the code can drain the same backlog in turn. `--clickhouse-url` writes to that
ClickHouse server instead, into a fresh database per run: the consumer's process then loads no
chDB (the result says so), as in server mode. `--sweep` drains the same events once per batch
size, each time in a new consumer group. The producer and every consumer run in processes of
their own, so each consumer's memory and CPU time are its own. The events carry the audience
fields (browser, os, platform, region, embed_url, viewer) with the cardinalities a collector
sees; an earlier checkout's own copy of this module produces its collectors' events, without
them. `--out FILE` writes the results as JSON for benchmarks.report
(benchmarks/results/consumer_throughput.json, or consumer_sweep.json).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.broker import kafka_bootstrap
from benchmarks.record import write_result
from benchmarks.scratch import scratch_storage
from viewstats.core.events import PlayerEvent
from viewstats.core.storage import Storage
from viewstats.devtools.topics import create_topic
from viewstats.ingest.collector.kafka_sink import MAX_PENDING, KafkaSink
from viewstats.ingest.consumer.kafka_consumer import DEFAULT_BATCH_MS, DEFAULT_BATCH_ROWS, Consumer
from viewstats.ingest.dedup import DEFAULT_CAPACITY
from viewstats.schema.migrations import migrate

COUNTRIES = ("US", "IN", "BR", "GB", "DE", "FR", "JP", "ID", "MX", "AU", "ZZ")
START_MS = 1_714_521_600_000
# Events per submit: the most the sink lets wait for the broker's acknowledgement at once;
# a larger submit is refused whole (SinkUnavailable), the bound that keeps a collector's
# memory flat while Kafka is away.
CHUNK = MAX_PENDING


# The audience fields as a collector stamps them, with the cardinalities it sees: ~20
# browsers, ~10 systems, 6 platforms, ~200 regions (20 per country but ZZ's, which has none),
# 50 pages per client, and viewer keys (random-looking 64-bit hashes) from a pool of VIEWERS.
BROWSERS = tuple(f"Browser {n}" for n in range(20))
SYSTEMS = tuple(f"OS {n}" for n in range(10))
VIEWERS = 100_000
_PLATFORMS = ("mobile", "desktop", "tablet", "tv", "unknown", "bot")  # most seen first
_MIX = 0x9E3779B97F4A7C15  # an odd 64-bit multiplier: consecutive n land far apart


def _draw(n: int, salt: int, size: int) -> int:
    """A fixed pseudo-random pick in range(size) for event n, most often the first few."""
    u = ((n * _MIX + salt * 0x632BE59BD9B4E5) & 0xFFFFFFFF) / 2**32
    return int(size * u * u)


def _audience(n: int, client: int, country: str) -> tuple[str, str, str, str, str, int]:
    """browser, os, platform, region, embed_url and viewer of event n."""
    return (BROWSERS[_draw(n, 1, 20)], SYSTEMS[_draw(n, 2, 10)],
            _PLATFORMS[_draw(n, 3, len(_PLATFORMS))],
            "" if country == "ZZ" else f"{country}-R{_draw(n, 4, 20)}",
            f"https://site{client % 100}.example/page{_draw(n, 5, 50)}",
            1 + ((1 + _draw(n, 6, VIEWERS)) * _MIX) % (2**64 - 1))


def _events(start: int, count: int) -> list[PlayerEvent]:
    kinds = ("init", "start", "watch", "watch", "watch")
    events = []
    for n in range(start, start + count):
        client, country = 1 + n % 500, COUNTRIES[n % len(COUNTRIES)]
        events.append(PlayerEvent(client, START_MS + n * 37, kinds[n % 5], "vod",
                                  f"v-{n % 997}", str(uuid.UUID(int=n, version=4)), country,
                                  "player.example.com", *_audience(n, client, country)))
    return events


def produce(bootstrap: str, topic: str, count: int) -> None:
    """`count` events into `topic`, as collectors put them there (KafkaSink); also the tests'
    way to make a backlog for `--topic`."""
    async def send() -> None:
        sink = KafkaSink(bootstrap, topic)
        await sink.start()
        try:
            started = time.monotonic()
            for first in range(0, count, CHUNK):
                await sink.submit(_events(first, min(CHUNK, count - first)))
                # The sink counts acknowledged events out in their deliveries' done-callbacks,
                # which the loop runs only after this task yields: without it the next chunk
                # would find the last one still pending and be refused.
                await asyncio.sleep(0)
                done = min(first + CHUNK, count)
                print(f"\rproduced {done:>10,} ({done / (time.monotonic() - started):,.0f}/s)",
                      end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            await sink.stop()
    asyncio.run(send())


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class _AnonPeak(threading.Thread):
    """Samples this process's anonymous memory every 50 ms: /proc has no high-water mark of it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb, self._done = 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_mb = max(self.peak_mb, _rss_mb("RssAnon"))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mb


async def _consume(args: argparse.Namespace, storage: Storage, bootstrap: str, topic: str,
                   group: str, batch_rows: int) -> dict[str, float | int | str | bool]:
    migrate(storage)
    consumer = Consumer(storage, bootstrap, topic=topic, group_id=group,
                        batch_rows=batch_rows, batch_ms=args.batch_ms,
                        dedup_capacity=args.dedup_capacity)
    anon = _AnonPeak()
    anon.start()
    started, cpu = time.monotonic(), _cpu_seconds()
    task = asyncio.create_task(consumer.run())
    while consumer.stats.inserted + consumer.stats.duplicates < args.events and not task.done():
        await asyncio.sleep(0.5)
        took = time.monotonic() - started
        print(f"\rconsumed {consumer.stats.consumed:>10,}  inserted {consumer.stats.inserted:>10,}"
              f"  {consumer.stats.inserted / took:>9,.0f} events/s  RSS "
              f"{_rss_mb('VmRSS'):5.0f} MB", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    took, cpu = time.monotonic() - started, _cpu_seconds() - cpu
    await consumer.stop()
    await task
    stats = consumer.stats
    return {"batch_rows": batch_rows, "batch_ms": args.batch_ms, "seconds": took,
            "events_per_s": args.events / took, "cpu_cores": cpu / took,
            "peak_rss_mb": _rss_mb("VmHWM"), "peak_anon_mb": anon.stop(),
            "batches": stats.batches, "store_seconds": stats.store_seconds,
            "duplicates": stats.duplicates,
            "storage": "chdb" if args.clickhouse_url is None else "server",
            "chdb_loaded": "chdb" in sys.modules}


def _drain(args: argparse.Namespace, bootstrap: str, topic: str, group: str,
           batch_rows: int) -> dict[str, float | int | str | bool]:
    """One consumer of the whole topic into a fresh database; runs in a process of its own."""
    with scratch_storage(args.clickhouse_url, "consumer", 4) as storage:
        return asyncio.run(_consume(args, storage, bootstrap, topic, group, batch_rows))


def _report(events: int, run: dict[str, float | int | str | bool]) -> None:
    print(f"batch_rows {run['batch_rows']:,}: {events:,} events in {run['seconds']:.1f} s: "
          f"{run['events_per_s']:,.0f} events/s (from the consumer's start, group join "
          f"included); {run['batches']} batches, {run['store_seconds']:.1f} s storing; "
          f"{run['cpu_cores']:.2f} cores busy in the consumer's process; peak RSS "
          f"{run['peak_rss_mb']:.0f} MB (anonymous {run['peak_anon_mb']:.0f} MB); into "
          f"{run['storage']}, chDB {'loaded' if run['chdb_loaded'] else 'not loaded'} in the "
          "consumer's process", flush=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _batch_sizes(raw: str) -> list[int]:
    try:
        sizes = [int(part) for part in raw.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated row counts") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError("row counts must be positive")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events to drain")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one here)")
    parser.add_argument("--topic", help="drain this topic of --bootstrap, produced by an "
                        "earlier run with at least --events events, instead of producing one")
    parser.add_argument("--clickhouse-url", help="write to this ClickHouse server (a fresh "
                        "database per run) instead of a fresh chDB")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS,
                        help=f"rows that close a batch ({DEFAULT_BATCH_ROWS}, the consumer's)")
    parser.add_argument("--batch-ms", type=int, default=DEFAULT_BATCH_MS,
                        help=f"age that closes a batch ({DEFAULT_BATCH_MS}, the consumer's)")
    parser.add_argument("--sweep", type=_batch_sizes, metavar="ROWS,ROWS,...",
                        help="drain once per batch size (instead of --batch-rows)")
    parser.add_argument("--dedup-capacity", type=int, default=DEFAULT_CAPACITY,
                        help="the consumer's window of recent (client_id, view_id, event) keys")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.topic and not args.bootstrap:
        parser.error("--topic needs --bootstrap")
    topic = args.topic or f"bench-{uuid.uuid4().hex[:8]}"
    spawn = multiprocessing.get_context("spawn")
    runs = []
    with kafka_bootstrap(args.bootstrap) as bootstrap:
        if not args.topic:
            asyncio.run(create_topic(bootstrap, topic, args.partitions))
            producer = spawn.Process(target=produce, args=(bootstrap, topic, args.events))
            producer.start()
            producer.join()
            if producer.exitcode != 0:
                print("producing failed", file=sys.stderr)
                return 1
            print(f"produced {args.events:,} events into topic {topic}", file=sys.stderr)
        for batch_rows in args.sweep or [args.batch_rows]:
            print(f"draining with batch_rows={batch_rows:,}", file=sys.stderr, flush=True)
            # A new process per run: VmHWM and CPU time then cover this consumer only.
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                run = pool.submit(_drain, args, bootstrap, topic,
                                  f"bench-{topic}-{uuid.uuid4().hex[:8]}", batch_rows).result()
            _report(args.events, run)
            runs.append(run)
    if args.out:
        write_result(args.out, {
            "benchmark": "consumer_throughput", "events": args.events,
            "partitions": args.partitions, "dedup_capacity": args.dedup_capacity,
            "default_batch_rows": DEFAULT_BATCH_ROWS, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
