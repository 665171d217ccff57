"""The embedded writer: without Kafka, accepted events are batched in-process and inserted into
the database, and each request is answered only after the insert holding its events returned
(like ClickHouse's `async_insert` with `wait_for_async_insert=1`).

An insert costs the engine a fixed ~30-60 ms of CPU whatever its size (`player_events` and its
eight materialized views each write a part; 1,000 rows cost ~20% more than one), so requests
share inserts: group commit. One insert runs at a time and every request that arrives meanwhile
joins the next batch. When the writer is free, the oldest batch goes in as soon as

* its rows pay for the insert: rows x `ROW_BUDGET_S` >= the CPU time of the last insert. At a
  high rate batches close by this and never linger, and the writer runs back to back while it
  has a batch that size;
* or `linger_s` (EMBEDDED_LINGER_MS) passed since its first event: at a low rate a batch waits
  that long for company, so a trickle of beacons costs about one insert per linger instead of
  one per beacon, and each beacon's 202 comes up to a linger later;
* or it holds `max_rows` (later events open the next batch), or the sink is stopping.

At most `max_waiting` events wait for their insert; a request that would exceed that is refused
(`SinkUnavailable`: 503 with Retry-After) instead of holding more memory while the engine is
slow. A failed insert fails exactly the requests of its batch.

An insert is not atomic across `player_events` and its rollups: one that fails part way (a disk
that fills while the views write) leaves some tables holding its rows. So every insert carries a
token of its own, and a failed one stays unsettled: before any later batch goes in, the writer
inserts the same rows with the same token again, and the engine then writes them only where
they are missing (deduplicate_blocks_in_dependent_materialized_views). Until that succeeds,
later batches fail without an insert; once it does, its events are in the dedup window, so the
player's resend of a beacon answered 503 counts once.

The dedup window starts with what was stored in the last `dedup_horizon_s` (ingest/dedup.py), all
of it (this process is the only writer), so a player retrying a beacon whose 202 it never got
counts once across a restart too. `start` returns only then: the server takes no request before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.metrics import BATCH_ROWS, INSERT_SECONDS
from viewstats.core.storage import Storage
from viewstats.ingest.collector.sink import SinkUnavailable
from viewstats.ingest.dedup import DEFAULT_HORIZON_S, RecentEvents, stored_pairs

log = logging.getLogger(__name__)

# A token per insert, never content hashes: batches are unique by construction (server
# timestamps, deduplicated views), and deduplication of untokened blocks would silently drop a
# legitimately equal one. Only a retry of the same rows carries the same token.
_INSERT_SETTINGS = {"insert_deduplicate": 1,
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                    "async_insert": 0}

# Insert CPU one row may cost: half the 0.2 ms a beacon may cost the server in all, the other
# half being its HTTP request (~0.09 ms). With a ~40 ms insert a batch closes at ~400 rows.
ROW_BUDGET_S = 100e-6
_FIRST_COST_S = 0.04  # the insert cost assumed until the first insert measured its own
# Two full batches (one in the engine, one filling): 4 s of 5,000 beacons/s, some 20 MB of events
# and the requests that wait with them.
MAX_WAITING = 20_000


class _Batch:
    def __init__(self) -> None:
        self.events: list[PlayerEvent] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.opened = time.monotonic()


class _Insert(NamedTuple):
    rows: Sequence[PlayerEvent]
    token: str


def _insert(storage: Storage, insert: _Insert) -> float:
    """Insert `rows`; the CPU time it took this thread (the engine inserts in the caller's)."""
    started = time.thread_time()
    insert_events(storage, insert.rows,
                  {**_INSERT_SETTINGS, "insert_deduplication_token": insert.token})
    return time.thread_time() - started


class EmbeddedSink:
    def __init__(self, storage: Storage, *, linger_s: float,
                 max_rows: int = 10_000, max_waiting: int = MAX_WAITING,
                 dedup: RecentEvents | None = None,
                 dedup_horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self._storage = storage
        self._linger_s = linger_s
        self._max_rows = max_rows
        self._max_waiting = max_waiting
        self._dedup = dedup or RecentEvents()
        self._dedup_horizon_s = dedup_horizon_s
        self._batches: deque[_Batch] = deque()  # waiting for the writer, oldest first
        self._waiting = 0  # events submitted and not answered yet
        self._insert_cost_s = _FIRST_COST_S
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer: asyncio.Task[None] | None = None
        self._refused = 0  # requests refused in the current burst
        self._unsettled: _Insert | None = None  # a failed insert, maybe partly stored

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
        if self._waiting + len(events) > self._max_waiting:
            self._refuse()
        if self._refused:
            log.warning("the embedded writer takes events again, after %d refused requests",
                        self._refused)
            self._refused = 0
        if not self._batches or len(self._batches[-1].events) >= self._max_rows:
            self._batches.append(_Batch())
            self._wake.set()  # the writer may be waiting for a first event to time its linger
        batch = self._batches[-1]
        batch.events.extend(events)
        self._waiting += len(events)
        if self._big_enough(batch):
            self._wake.set()
        await asyncio.shield(batch.done)

    def _refuse(self) -> None:
        if not self._refused:
            log.error("%d events wait for the database, the most the embedded writer holds; "
                      "beacons are answered 503 until inserts catch up", self._waiting)
        self._refused += 1
        raise SinkUnavailable(f"{self._waiting} events wait for the database")

    def _big_enough(self, batch: _Batch) -> bool:
        rows = len(batch.events)
        return rows >= self._max_rows or rows * ROW_BUDGET_S >= self._insert_cost_s

    async def _next_batch(self) -> _Batch | None:
        """The oldest batch once it is due; None once the sink stops and all are written."""
        while True:
            self._wake.clear()
            timeout: float | None = None
            if self._batches:
                head = self._batches[0]
                timeout = head.opened + self._linger_s - time.monotonic()
                if self._stopping or timeout <= 0 or self._big_enough(head):
                    return self._batches.popleft()
            elif self._stopping:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _write_loop(self) -> None:
        while (batch := await self._next_batch()) is not None:
            try:
                await self._settle()
                rows = self._dedup.unseen(batch.events)
                if rows:
                    await self._write(_Insert(rows, f"embedded:{uuid.uuid4()}"))
            except Exception as exc:
                batch.done.set_exception(exc)
            else:
                batch.done.set_result(None)
            finally:
                self._waiting -= len(batch.events)
        with contextlib.suppress(Exception):
            await self._settle()  # stopping: a last try, after which it is logged below

    async def _write(self, insert: _Insert) -> None:
        started = time.perf_counter()
        try:
            self._insert_cost_s = await asyncio.to_thread(_insert, self._storage, insert)
        except Exception:
            self._unsettled = insert
            raise
        INSERT_SECONDS.observe(time.perf_counter() - started)
        BATCH_ROWS.observe(len(insert.rows))
        self._dedup.remember(insert.rows)

    async def _settle(self) -> None:
        """Insert the failed insert's rows again, under its token, until the engine took them."""
        if (unsettled := self._unsettled) is not None:
            self._unsettled = None
            await self._write(unsettled)
            log.info("the %d events of a failed insert are stored now, each once",
                     len(unsettled.rows))

    async def stop(self) -> None:
        """Write what was submitted, then end the writer."""
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        if self._unsettled is not None:
            log.error("stopping with a failed insert of %d events unsettled: some of them may "
                      "be in player_events or its rollups and not in the others",
                      len(self._unsettled.rows))
