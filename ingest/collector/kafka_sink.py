"""The collector's sink when Kafka is configured: each event to `player-events`, key = view_id.

The key puts every event of one view in one partition, so the consumer that owns it sees all
copies of a retried event (architecture §3). `submit` returns only after the broker
acknowledged every event to all in-sync replicas; idempotence keeps the producer's own retries
from duplicating.

A broker that is down or does not answer must not hold requests (architecture §11): a submit
waits at most `timeout_s` for the acknowledgements, then raises `SinkUnavailable` (503). Its
events stay with the producer, which delivers them when the broker is back; the player resends
a refused beacon with the same body, and the consumer drops the second copy by its view id. So
at most `max_pending` events wait for acknowledgement, and a submit that would exceed that is
refused at once instead of growing the producer's buffer without bound.

A producer that gives up on a batch (aiokafka expires one whose partition has had no leader
for `request_timeout_ms`, as during a broker's controlled shutdown) leaves a gap in its
idempotence sequence, and the broker then refuses every later batch of that partition with
OutOfOrderSequenceNumber, for good. So the first delivery failure starts a new producer (a new
producer id, sequences from 0), requests are refused until it has started, and the old one
settles what it still holds and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from viewstats.core.events import PlayerEvent
from viewstats.ingest import wire
from viewstats.ingest.collector.deadlines import Deadlines
from viewstats.ingest.collector.partitioner import partition_of
from viewstats.ingest.collector.sink import SinkUnavailable

log = logging.getLogger(__name__)

LINGER_MS = 5  # a few ms of batching across concurrent requests, small next to a beacon's RTT
MAX_BATCH_BYTES = 256 * 1024  # per partition; the default 16 KiB caps throughput at ~60 events
TIMEOUT_S = 5.0
# ~1 KB of producer memory per waiting event (measured), so ~50 MB at most while Kafka is away:
# a few seconds of a collector core's peak beacons.
MAX_PENDING = 10_000
RESTART_BACKOFF_S = 1.0  # between attempts to start a new producer while the broker is away


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, *, timeout_s: float = TIMEOUT_S,
                 max_pending: int = MAX_PENDING) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._timeout_s, self._max_pending = timeout_s, max_pending
        self._deadlines = Deadlines(timeout_s)
        self._producer: Any = None
        self._pending = 0  # events handed to a producer and not acknowledged or failed yet
        self._renewing: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._failing_since: float | None = None  # the current burst of refusals began
        self._refusals = 0

    def _new_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
            linger_ms=LINGER_MS, max_batch_size=MAX_BATCH_BYTES)

    async def start(self) -> None:
        self._producer = self._new_producer()
        await self._producer.start()

    async def submit(self, events: Sequence[PlayerEvent]) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("KafkaSink.submit() before start()")
        if not events:
            return
        if self._renewing is not None:  # the broken producer would only take more to drop
            self._refuse("a new Kafka producer is starting")
        if self._pending + len(events) > self._max_pending:
            self._refuse(f"{self._pending} events await the broker's acknowledgement")
        self._pending += len(events)
        deliveries: list[asyncio.Future[Any]] = []
        acks = _Acknowledgements(self)
        try:
            with self._deadlines.bound():
                for event in events:
                    key = event.view_id.encode()
                    deliveries.append(await producer.send(
                        self._topic, wire.encode(event), key=key,
                        partition=self._partition(producer, key)))
                acks.watch(deliveries)
                await acks.all_settled  # leaves them to the producer on a timeout
        except TimeoutError:
            self._refuse(f"no acknowledgement within {self._timeout_s:g} s")
        except KafkaError as exc:
            self._renew(producer)
            self._refuse(repr(exc))
        finally:
            self._pending -= len(events) - len(deliveries)  # never handed over
            acks.watch(deliveries)
        for delivery in deliveries:
            if (error := delivery.exception()) is not None:
                self._renew(producer)
                self._refuse(repr(error))
        self._acknowledged()

    def _partition(self, producer: Any, key: bytes) -> int | None:
        """The partition aiokafka's default partitioner would pick, without its cost; None
        (aiokafka's own pick, once it has waited for them) while the topic's partitions are
        unknown."""
        partitions = producer.client.cluster.partitions_for_topic(self._topic)
        return partition_of(key, len(partitions)) if partitions else None

    def _refuse(self, reason: str) -> None:
        self._refusals += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.error("Kafka does not acknowledge events: %s. Beacons are answered 503 until "
                      "it does", reason)
        raise SinkUnavailable(reason)

    def _acknowledged(self) -> None:
        if self._failing_since is not None:
            log.warning("Kafka acknowledges events again, after %.1f s and %d refused requests",
                        time.monotonic() - self._failing_since, self._refusals)
            self._failing_since, self._refusals = None, 0

    def _renew(self, failed: Any) -> None:
        """Replace `failed`, the current producer, which has dropped events (see above)."""
        if failed is self._producer and self._renewing is None:
            log.warning("the Kafka producer dropped events it could not deliver; starting a "
                        "new one")
            self._renewing = asyncio.create_task(self._replace(failed))

    async def _replace(self, failed: Any) -> None:
        while True:
            fresh = self._new_producer()
            try:
                await fresh.start()
                break
            except KafkaError:
                await fresh.stop()
                await asyncio.sleep(RESTART_BACKOFF_S)
            except asyncio.CancelledError:
                await fresh.stop()
                raise
        self._producer, self._renewing = fresh, None
        log.warning("a new Kafka producer took over")
        retiring = asyncio.create_task(self._retire(failed))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    async def _retire(self, producer: Any) -> None:
        """Let `producer` settle what it holds (delivered, or refused by the broker), so that
        its events leave the pending count, then close it."""
        try:
            await producer.flush()
        finally:
            await self._close(producer)

    async def check(self) -> None:
        """Raise unless the brokers answer a metadata request (for /readyz)."""
        if self._producer is None:
            raise RuntimeError("the Kafka producer is not started")
        await self._producer.client.fetch_all_metadata()

    async def stop(self) -> None:
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        self._deadlines.close()
        others = [t for t in (self._renewing, *self._retiring) if t is not None]
        for task in others:
            task.cancel()
        await asyncio.gather(self._close(producer), *others, return_exceptions=True)

    async def _close(self, producer: Any) -> None:
        """Flush what the broker takes within `timeout_s`: a shutdown during an outage must
        not wait for it. What is left was never acknowledged, so no request got a 202 for it."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.stop()
        except TimeoutError:
            log.warning("closed a Kafka producer with events the broker never acknowledged "
                        "(their requests were answered 503)")


class _Acknowledgements:
    """One submit's deliveries: `all_settled` is done once each was acknowledged or failed, and
    each leaves the sink's pending count as it settles, even after the submit gave up on it.
    One future and one callback per delivery, where `asyncio.wait` costs several of each."""

    __slots__ = ("_left", "_sink", "all_settled")

    def __init__(self, sink: KafkaSink) -> None:
        self._sink, self._left = sink, -1
        self.all_settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def watch(self, deliveries: Sequence[asyncio.Future[Any]]) -> None:
        """Watch these deliveries; once: a second call, on the way out, does nothing."""
        if self._left >= 0:
            return
        self._left = len(deliveries)
        for delivery in deliveries:
            delivery.add_done_callback(self._settled)

    def _settled(self, delivery: asyncio.Future[Any]) -> None:
        self._sink._pending -= 1
        if not delivery.cancelled():
            delivery.exception()  # retrieved: a late failure concerns a request answered 503
        self._left -= 1
        if self._left == 0 and not self.all_settled.done():
            self.all_settled.set_result(None)
