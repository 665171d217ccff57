"""Where the collector hands accepted events: the embedded batcher or Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from viewstats.core.events import PlayerEvent


class SinkUnavailable(RuntimeError):
    """The events could not be made durable now (a broker away); the sink logged why, once a
    burst. The request is answered 503 with Retry-After."""


class EventSink(Protocol):
    async def start(self) -> None: ...

    async def submit(self, events: Sequence[PlayerEvent]) -> None:
        """Return only once the events are durable: inserted, or acknowledged by Kafka.

        Raises when they are not, so the collector can answer with an error instead of 202.
        """

    async def stop(self) -> None:
        """Flush what was submitted, then release resources."""
