"""The collector's sink when Kafka is configured: each event to `player-events`, key = view_id.

The key puts every event of one view in one partition, so the consumer that owns it sees all
copies of a retried event (architecture §3). `submit` returns only after the broker
acknowledged every event to all in-sync replicas; idempotence keeps the producer's own retries
from duplicating.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from viewstats.core.events import PlayerEvent
from viewstats.ingest import wire

LINGER_MS = 5  # a few ms of batching across concurrent requests, small next to a beacon's RTT
MAX_BATCH_BYTES = 256 * 1024  # per partition; the default 16 KiB caps throughput at ~60 events


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._producer: Any = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
            linger_ms=LINGER_MS, max_batch_size=MAX_BATCH_BYTES)
        await self._producer.start()

    async def submit(self, events: Sequence[PlayerEvent]) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaSink.submit() before start()")
        deliveries = [await self._producer.send(self._topic, wire.encode(e),
                                                key=e.view_id.encode()) for e in events]
        await asyncio.gather(*deliveries)

    async def check(self) -> None:
        """Raise unless the brokers answer a metadata request (for /readyz)."""
        if self._producer is None:
            raise RuntimeError("the Kafka producer is not started")
        await self._producer.client.fetch_all_metadata()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
