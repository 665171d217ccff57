"""The embedded writer: without Kafka, accepted events are batched in-process and inserted into
the database, and each request is answered only after its batch is in (like ClickHouse's
`async_insert` with `wait_for_async_insert=1`).

Concurrent requests share one insert: a batch closes when it reaches `max_rows` or when
`max_delay_s` passed since its first event, whichever comes first. One insert runs at a time,
in a worker thread, while the next batch fills.

The dedup window starts with what was stored in the last `dedup_horizon_s` (ingest/dedup.py), all
of it (this process is the only writer), so a player retrying a beacon whose 202 it never got
counts once across a restart too. `start` returns only then: the server takes no request before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.metrics import BATCH_ROWS, INSERT_SECONDS
from viewstats.core.storage import Storage
from viewstats.ingest.dedup import DEFAULT_HORIZON_S, RecentEvents, stored_pairs

log = logging.getLogger(__name__)

# Batches are unique by construction (server timestamps, deduplicated views), and ClickHouse's
# content-hash deduplication of untokened blocks would silently drop a legitimately equal one.
_INSERT_SETTINGS = {"insert_deduplicate": 0, "async_insert": 0}


class _Batch:
    def __init__(self) -> None:
        self.events: list[PlayerEvent] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class EmbeddedSink:
    def __init__(self, storage: Storage, *, max_rows: int = 10_000, max_delay_s: float = 0.05,
                 dedup: RecentEvents | None = None,
                 dedup_horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self._storage = storage
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._dedup = dedup or RecentEvents()
        self._dedup_horizon_s = dedup_horizon_s
        self._open: _Batch | None = None
        self._ready: asyncio.Queue[_Batch | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        started = time.monotonic()
        since_ms = int((time.time() - self._dedup_horizon_s) * 1000)
        pairs = await asyncio.to_thread(stored_pairs, self._storage, since_ms,
                                        self._dedup.refill_size)
        self._dedup.recall(pairs)
        log.info("dedup window: %d stored pairs in %.2f s", len(pairs), time.monotonic() - started)
        self._writer = asyncio.create_task(self._write_loop(), name="embedded-batcher")

    async def submit(self, events: Sequence[PlayerEvent]) -> None:
        if self._writer is None or self._writer.done():
            raise RuntimeError("the embedded batcher is not running")
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            self._timer = asyncio.get_running_loop().call_later(self._max_delay_s, self._close)
        batch.events.extend(events)
        if len(batch.events) >= self._max_rows:
            self._close()
        await asyncio.shield(batch.done)

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._open is not None:
            self._ready.put_nowait(self._open)
            self._open = None

    async def _write_loop(self) -> None:
        while (batch := await self._ready.get()) is not None:
            try:
                rows = self._dedup.unseen(batch.events)
                if rows:
                    started = time.perf_counter()
                    await asyncio.to_thread(insert_events, self._storage, rows, _INSERT_SETTINGS)
                    INSERT_SECONDS.observe(time.perf_counter() - started)
                    BATCH_ROWS.observe(len(rows))
                self._dedup.remember(rows)
            except Exception as exc:
                batch.done.set_exception(exc)
            else:
                batch.done.set_result(None)

    async def stop(self) -> None:
        """Write what was submitted, then end the writer."""
        self._close()
        self._ready.put_nowait(None)
        if self._writer is not None:
            await self._writer
