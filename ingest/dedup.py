"""The writer's bounded window of recently stored `(view_id, event)` pairs (architecture §3).

A player retry (same view, same event) arriving while its first copy is in the window is
dropped. The window is two generations: it always remembers at least the last
`capacity // 2` and at most the last `capacity` distinct pairs this writer stored (default
1,000,000: about 160 MB when full). With Kafka all of a view's events share a partition
(key = view_id), so one consumer sees every copy of them.

A writer that starts, or takes partitions over, refills the window from what is stored
(`stored_pairs`): the newest `capacity // 2` pairs of the last DEDUP_HORIZON_S, for a consumer
only those of the partitions it owns. So a retry within the horizon is dropped across restarts
and rebalances as long as fewer than `capacity // 2` pairs of those partitions were stored since
its first copy; an older one counts again.

Each pair keeps the server time of its newest stored copy, for the replay of a recorded range
(architecture §5): it must insert the same rows as its first attempt, whose rows the window may
now hold, or a first attempt that stored the raw rows but not the rollups' would never be
completed under the range's dedup token. So in a replay a stored copy with the event's own time
is taken for that event, stored by the first attempt. A player's retry is a new request and has
a new server time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import NamedTuple

from viewstats.core.events import TABLE, PlayerEvent
from viewstats.core.storage import Params, Storage

DEFAULT_CAPACITY = 1_000_000
DEFAULT_HORIZON_S = 3600


class PartitionFilter(NamedTuple):
    """The Kafka partitions a consumer owns, of a topic with `total` partitions."""

    total: int
    owned: frozenset[int]


def _key(event: PlayerEvent) -> str:
    return event.view_id + event.event


class RecentEvents:
    """Used by the writer's worker thread and by the refill at once, hence the lock."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._generation_size = max(capacity // 2, 1)
        self._current: dict[str, int] = {}  # pair -> ts_ms of its stored copy
        self._previous: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    @property
    def refill_size(self) -> int:
        """How many stored pairs a refill loads: no more than the window surely keeps, so a
        refill never pushes out a pair the writer stored while it ran."""
        return self._generation_size

    def unseen(self, events: Iterable[PlayerEvent], *,
               replay: bool = False) -> list[PlayerEvent]:
        """The events whose pair is neither in the window nor earlier in `events`; in a
        `replay`, a pair in the window with the event's own time does not count as seen.

        Nothing is remembered yet: call `remember` once they are stored, so a failed insert
        does not turn the retry of its events into "duplicates".
        """
        fresh: list[PlayerEvent] = []
        batch: set[str] = set()
        with self._lock:
            for event in events:
                key = _key(event)
                if key in batch:
                    continue
                stored = self._current.get(key, self._previous.get(key))
                if stored is not None and not (replay and stored == event.ts_ms):
                    continue
                batch.add(key)
                fresh.append(event)
        return fresh

    def remember(self, events: Iterable[PlayerEvent]) -> None:
        with self._lock:
            for event in events:
                self._add(_key(event), event.ts_ms)

    def recall(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Learn stored `(view_id + event, ts_ms)` pairs, oldest first, so the newest stay."""
        with self._lock:
            for key, ts_ms in pairs:
                # The newest stored copy is the one a replay of the last recorded range holds.
                known = self._current.get(key, self._previous.get(key, ts_ms))
                self._add(key, max(known, ts_ms))

    def _add(self, key: str, ts_ms: int) -> None:
        self._current[key] = ts_ms
        if len(self._current) >= self._generation_size:
            self._previous, self._current = self._current, {}


# The newest rows of the horizon. player_events is partitioned by month and ordered by
# (client_id, ts): the ts bound prunes every older month's part by its minmax index and, inside
# the current month's parts, the granules of clients with older data; what is left is read
# whole (three columns) and top-N sorted, so the cost grows with the rows of the horizon.
_RECENT = (f"SELECT concat(toString(view_id), toString(event)), toUnixTimestamp64Milli(ts)"
           f" FROM {TABLE} WHERE ts >= fromUnixTimestamp64Milli({{since:Int64}}, 'UTC')")
# Kafka's default partitioner (aiokafka's and the Java client's) for a keyed message is
# murmur2(key) & 0x7fffffff % partitions; kafkaMurmurHash is exactly that hash, and the key is
# the view id's canonical text (ingest/collector/kafka_sink.py).
_OWNED = (" AND has(splitByChar(',', {owned:String}),"
          " toString(kafkaMurmurHash(toString(view_id)) % {partitions:UInt32}))")
_NEWEST = " ORDER BY ts DESC LIMIT {limit:UInt64}"


def stored_pairs(storage: Storage, since_ms: int, limit: int,
                 partitions: PartitionFilter | None = None) -> list[tuple[str, int]]:
    """The newest `limit` pairs stored at `since_ms` or later, oldest first (for `recall`);
    with `partitions`, only those of the views Kafka puts in the owned partitions."""
    params: Params = {"since": since_ms, "limit": limit}
    sql = _RECENT
    if partitions is not None:
        sql += _OWNED
        params = {**params, "partitions": partitions.total,
                  "owned": ",".join(map(str, sorted(partitions.owned)))}
    rows = storage.query(sql + _NEWEST, params)
    return [(str(key), int(ts)) for key, ts in reversed(rows)]
