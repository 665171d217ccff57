"""What tells the sealed buckets (query_api/sealed.py) about writes (architecture §13); the
writers' side is viewstats/core/write_announcements.py.

- Embedded engine: every write goes through this process, and its writer announces each one as
  it returns; the buckets it touched are dropped there and then.
- Server mode: other processes write, and every writer records what its write touched in
  `write_records` after the write returned. The API reads the records it has not seen, at most
  once a second and only while it answers, before it uses kept buckets. If it cannot read
  them, it uses none and keeps none until it can.

A record becomes visible some time after its `written_at` (set when the insert began), so each
read goes back `OVERLAP_MS` before the newest record seen and skips the ids it has seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Protocol

from viewstats.core.storage import Storage, StorageError
from viewstats.core.write_announcements import RECORDS_TABLE, listen
from viewstats.query_api.sealed import SealedBuckets

log = logging.getLogger(__name__)

OVERLAP_MS = 10_000
POLL_INTERVAL_S = 1.0
# Records live a day (migration 0007): after a longer gap some may be gone, so start afresh.
MAX_GAP_S = 3600.0

_NEW_RECORDS = """SELECT toString(id), client_ids, toUnixTimestamp64Milli(ts_from),
    toUnixTimestamp64Milli(ts_to), toUnixTimestamp64Milli(written_at)
FROM """ + RECORDS_TABLE + """
WHERE written_at >= if({since:Int64} < 0, now64(3) - toIntervalMillisecond(""" + str(
    OVERLAP_MS) + """), fromUnixTimestamp64Milli({since:Int64}, 'UTC'))"""


class WriteFeed(Protocol):
    def current(self) -> bool:
        """Whether kept buckets may be used now; may read `write_records` (I/O)."""

    def recent(self) -> bool:
        """Whether they were vouched for within the poll interval, without I/O."""


def follow_writes(storage: Storage, buckets: SealedBuckets,
                  interval_s: float = POLL_INTERVAL_S) -> WriteFeed:
    """What drops the `buckets` that writes to `storage`'s database touch. Keep it as long as
    the buckets: the announcements reach it only while it lives."""
    if storage.exclusive:
        return AnnouncedWrites(buckets)
    return RecordedWrites(storage, buckets, interval_s)


class AnnouncedWrites:
    """Embedded: this process makes every write and announces each as it returns, so kept
    buckets are always current."""

    def __init__(self, buckets: SealedBuckets) -> None:
        self._buckets = buckets
        listen(self)

    def inserted(self, client_ids: Collection[int], first_ms: int, last_ms: int) -> None:
        self._buckets.invalidate(client_ids, first_ms, last_ms)

    def rewritten(self) -> None:
        self._buckets.invalidate_all()

    def current(self) -> bool:
        return True

    def recent(self) -> bool:
        return True


class RecordedWrites:
    """Server mode: `current()` reads new write records (when a second has passed since the
    last read) and drops what they touched; False means the buckets must not be used now."""

    def __init__(self, storage: Storage, buckets: SealedBuckets,
                 interval_s: float = POLL_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._storage = storage
        self._buckets = buckets
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None  # when the last read succeeded
        self._since_ms = -1  # the first read starts OVERLAP_MS before the server's now
        self._seen: dict[str, int] = {}  # record id -> written_at, within the overlap

    def recent(self) -> bool:
        """Whether the records were read within the poll interval (no I/O)."""
        read_at = self._read_at
        return read_at is not None and self._clock() - read_at < self._interval_s

    def current(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._read_at is not None:
                if now - self._read_at < self._interval_s:
                    return True
                if now - self._read_at > MAX_GAP_S:
                    self._forget()  # records may have expired unread: start afresh
            try:
                records = self._storage.query(_NEW_RECORDS, {"since": self._since_ms})
            except StorageError as exc:
                if self._read_at is not None:
                    log.warning("cannot read write_records; answering from the database "
                                "alone until it can: %s", exc)
                self._forget()
                return False
            for record_id, clients, ts_from, ts_to, written_at in records:
                if record_id not in self._seen:
                    self._seen[record_id] = int(written_at)
                    self._buckets.invalidate([int(c) for c in clients], int(ts_from),
                                             int(ts_to))
            if self._seen:
                self._since_ms = max(self._seen.values()) - OVERLAP_MS
                self._seen = {k: v for k, v in self._seen.items() if v >= self._since_ms}
            self._read_at = now
            return True

    def _forget(self) -> None:
        """Nothing kept can be vouched for: drop it all and read from OVERLAP_MS ago."""
        self._buckets.invalidate_all()
        self._read_at = None
        self._since_ms = -1
        self._seen.clear()
