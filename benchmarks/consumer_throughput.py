"""Kafka -> ClickHouse throughput of one consumer (DESIGN §10: >= 250,000 events/s, RSS < 500 MB).

    python -m benchmarks.consumer_throughput --events 1000000

Pre-produces `--events` player events (a real broker: `--bootstrap`, or a private one started
here), then drains them with one in-process `Consumer` into a fresh chDB and prints events/s
and the consumer's peak RSS. The producer runs in a child process so its memory is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.consumer import DEFAULT_BATCH_MS, DEFAULT_BATCH_ROWS, Consumer
from ingest.dedup import DEFAULT_CAPACITY
from ingest.events import PlayerEvent
from ingest.kafka_sink import KafkaSink
from schema.migrations import migrate
from scripts.kafka_broker import free_ports, start_broker, stop_broker, wait_until_ready
from tests.support.kafka import create_topic
from viewstats.storage.embedded import EmbeddedStorage

COUNTRIES = ("US", "IN", "BR", "GB", "DE", "FR", "JP", "ID", "MX", "AU", "ZZ")
START_MS = 1_714_521_600_000
CHUNK = 20_000


def _events(start: int, count: int) -> list[PlayerEvent]:
    kinds = ("init", "start", "watch", "watch", "watch")
    return [PlayerEvent(1 + n % 500, START_MS + n * 37, kinds[n % 5], "vod", f"v-{n % 997}",
                        str(uuid.UUID(int=n, version=4)), COUNTRIES[n % len(COUNTRIES)],
                        "player.example.com") for n in range(start, start + count)]


def _produce(bootstrap: str, topic: str, count: int) -> None:
    async def produce() -> None:
        sink = KafkaSink(bootstrap, topic)
        await sink.start()
        try:
            started = time.monotonic()
            for first in range(0, count, CHUNK):
                await sink.submit(_events(first, min(CHUNK, count - first)))
                done = min(first + CHUNK, count)
                print(f"\rproduced {done:>10,} ({done / (time.monotonic() - started):,.0f}/s)",
                      end="", flush=True)
            print()
        finally:
            await sink.stop()
    asyncio.run(produce())


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _consume(args: argparse.Namespace, bootstrap: str, topic: str, path: Path) -> None:
    storage = EmbeddedStorage(path, 4)
    migrate(storage)
    consumer = Consumer(storage, bootstrap, topic=topic, group_id=f"bench-{topic}",
                        batch_rows=args.batch_rows, batch_ms=args.batch_ms,
                        dedup_capacity=args.dedup_capacity)
    started, cpu = time.monotonic(), _cpu_seconds()
    task = asyncio.create_task(consumer.run())
    peak = peak_anon = 0.0
    while consumer.stats.inserted + consumer.stats.duplicates < args.events and not task.done():
        await asyncio.sleep(0.5)
        peak, peak_anon = max(peak, _rss_mb("VmRSS")), max(peak_anon, _rss_mb("RssAnon"))
        took = time.monotonic() - started
        print(f"\rconsumed {consumer.stats.consumed:>10,}  inserted {consumer.stats.inserted:>10,}"
              f"  {consumer.stats.inserted / took:>9,.0f} events/s  RSS {peak:5.0f} MB",
              end="", flush=True)
    took, cpu = time.monotonic() - started, _cpu_seconds() - cpu
    await consumer.stop()
    await task
    storage.close()
    stats = consumer.stats
    print(f"\n{args.events:,} events in {took:.1f} s: {args.events / took:,.0f} events/s "
          f"(from the consumer's start, group join included); {stats.batches} batches, "
          f"{stats.store_seconds:.1f} s storing; {cpu / took:.2f} cores busy in this process; "
          f"peak RSS {_rss_mb('VmHWM'):.0f} MB (anonymous {peak_anon:.0f} MB, the rest is "
          "mostly chDB's 555 MB library mapped from disk)")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as log_dir:
        proc = start_broker(port, Path(log_dir))
        try:
            wait_until_ready(f"127.0.0.1:{port}", 120.0, proc)
            yield f"127.0.0.1:{port}"
        finally:
            stop_broker(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="events to drain")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one here)")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS)
    parser.add_argument("--batch-ms", type=int, default=DEFAULT_BATCH_MS)
    parser.add_argument("--dedup-capacity", type=int, default=DEFAULT_CAPACITY,
                        help="the consumer's window of recent (view_id, event) pairs")
    args = parser.parse_args(argv)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with _broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as data:
        asyncio.run(create_topic(bootstrap, topic, args.partitions))
        producer = multiprocessing.get_context("spawn").Process(
            target=_produce, args=(bootstrap, topic, args.events))
        producer.start()
        producer.join()
        if producer.exitcode != 0:
            print("producing failed", file=sys.stderr)
            return 1
        asyncio.run(_consume(args, bootstrap, topic, Path(data) / "clickhouse"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
