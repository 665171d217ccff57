"""Load missing sealed buckets off the request path (architecture §13).

A request whose buckets are not all in memory is answered by the engine at once, in the one
planned query it would need without buckets; what it lacked is loaded here afterwards, so the
next window of that client is answered from memory. One thread loads, one client at a time, so
loads never take more than one core from the requests; it ends when idle and starts again on the
next request. Queued work is bounded: a request that finds the queue full leaves its buckets
for a later one.
"""

from __future__ import annotations

import logging
import queue
import threading

from viewstats.core.storage import Storage, StorageError
from viewstats.query_api.bucket_loads import Wanted, load
from viewstats.query_api.sealed import BucketKey, SealedBuckets

log = logging.getLogger(__name__)

MAX_QUEUED = 64
IDLE_S = 10.0

_Job = tuple[int, Wanted, int, frozenset[BucketKey]]


class BucketFiller:
    def __init__(self, storage: Storage, buckets: SealedBuckets) -> None:
        self._storage = storage
        self._buckets = buckets
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job] = queue.Queue(MAX_QUEUED)
        self._queued: set[BucketKey] = set()
        self._thread: threading.Thread | None = None

    def request(self, client_id: int, wanted: Wanted, keys: frozenset[BucketKey]) -> None:
        with self._lock:
            if keys <= self._queued:
                return
            # The token comes before the read: a write that lands meanwhile refuses the result.
            try:
                self._queue.put_nowait((client_id, wanted, self._buckets.begin(), keys))
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
                client_id, wanted, token, keys = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                for key, bucket in load(self._storage, client_id, wanted).items():
                    self._buckets.put(key, client_id, bucket, token)
            except StorageError as exc:
                log.warning("could not load sealed buckets of client %s: %s", client_id, exc)
            finally:
                with self._lock:
                    self._queued -= keys
