"""Load missing sealed buckets off the request path (architecture §13).

A request whose buckets are not all in memory has the engine answer what they lack at once;
what it lacked is loaded here afterwards, so the next window of that client is answered from
memory. A client's day tally of a rollup is its first load: the quarter-hours of every day it
has data on follow, a month of days at a time, newest first, so that once met, any window of
that client with quarter-hour edges (every time zone's days and hours) is in memory. One thread
loads, one job at a time, so loads never take more than one core from the requests; it ends when
idle and starts again on the next request. Queued work is bounded: a request that finds the
queue full leaves its buckets for a later one.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading

from viewstats.core.rollups import Rollup
from viewstats.core.storage import Storage, StorageError
from viewstats.query_api.bucket_loads import Wanted, load
from viewstats.query_api.plan import DAY_MS, floor_to
from viewstats.query_api.sealed import BucketKey, SealedBuckets

log = logging.getLogger(__name__)

MAX_QUEUED = 256
IDLE_S = 10.0
MONTH_DAYS = 31  # the quarter-hour days one load reads

# (priority, order, client, what to load, write token, the buckets it fills): a client's days
# first (the meeting), then quarter-hours, then a quarter-hour's events; in order within each.
_Job = tuple[int, int, int, Wanted, int, frozenset[BucketKey]]


class BucketFiller:
    def __init__(self, storage: Storage, buckets: SealedBuckets) -> None:
        self._storage = storage
        self._buckets = buckets
        self._lock = threading.Lock()
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue(MAX_QUEUED)
        self._queued: set[BucketKey] = set()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def request(self, client_id: int, rollup: Rollup, keys: frozenset[BucketKey],
                sealed_to: int) -> None:
        """Load the buckets `keys` of one client's rollup, those not queued already."""
        with self._lock:
            keys = keys - self._queued
            if not keys:
                return
            kinds = {key[0] for key in keys}
            priority = 0 if "d" in kinds else 1 if "q" in kinds else 2
            # The token comes before the read: a write that lands meanwhile refuses the result.
            try:
                self._queue.put_nowait((priority, next(self._order), client_id,
                                        Wanted.of(rollup, keys, sealed_to),
                                        self._buckets.begin(), keys))
            except queue.Full:
                return
            self._queued |= keys
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bucket-filler",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                _, _, client_id, wanted, token, keys = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                for key, bucket in load(self._storage, client_id, wanted).items():
                    if self._buckets.put(key, client_id, bucket, token) and key[0] == "d":
                        self._meet(client_id, wanted, floor_to(bucket.first_ms, DAY_MS))
            except StorageError as exc:
                log.warning("could not load sealed buckets of client %s: %s", client_id, exc)
            finally:
                with self._lock:
                    self._queued -= keys

    def _meet(self, client_id: int, wanted: Wanted, first_day: int) -> None:
        """Queue the quarter-hours of every day from the client's first, but those kept."""
        name = wanted.rollup.name
        starts = [day for day in range(first_day, wanted.sealed_to, DAY_MS)
                  if not self._buckets.holds(("q", client_id, name, day))]
        for end in range(len(starts), 0, -MONTH_DAYS):
            self.request(client_id, wanted.rollup,
                         frozenset(("q", client_id, name, day)
                                   for day in starts[max(end - MONTH_DAYS, 0):end]),
                         wanted.sealed_to)
