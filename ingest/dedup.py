"""The writer's bounded window of recently stored events, keyed by `(client_id, view_id, event)`
(architecture §3).

A player retry (same client, same view, same event) arriving while its first copy is in the
window is dropped. The client is part of the key because the collector takes beacons from
anyone: keyed by view and event only, a stranger who sent a `watch` with a tenant's view_id
(which the player sends in `init` and `start` first) would have that tenant's view dropped.
The window is two generations: it always remembers at least the last `capacity // 2` and at
most the last `capacity` distinct keys this writer stored (default 1,000,000: about 165 MB
when full, 180 MB with client ids of 7 digits or more; benchmarks.dedup_window_memory). With
Kafka all of a view's events share a partition (key = view_id), so one consumer sees every
copy of them, whoever sent them.

A writer that starts, or takes partitions over, refills the window from what is stored
(`stored_pairs`): the newest `capacity // 2` keys of the last DEDUP_HORIZON_S, for a consumer
only those of the partitions it owns. So a retry within the horizon is dropped across restarts
and rebalances as long as fewer than `capacity // 2` events of those partitions were stored
since its first copy; an older one counts again.

Each key keeps the server time of its newest stored copy, for the replay of a recorded range
(architecture §5): it must insert the same rows as its first attempt, whose rows the window may
now hold, or a first attempt that stored the raw rows but not the rollups' would never be
completed under the range's dedup token. So in a replay a stored copy with the event's own time
is taken for that event, stored by the first attempt. A player's retry is a new request and has
a new server time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from viewstats.core.events import TABLE, PlayerEvent
from viewstats.core.storage import Params, Storage
from viewstats.ingest.wire import dedup_key

DEFAULT_CAPACITY = 1_000_000
DEFAULT_HORIZON_S = 3600


class PartitionFilter(NamedTuple):
    """The Kafka partitions a consumer owns, of a topic with `total` partitions."""

    total: int
    owned: frozenset[int]


def _key(event: PlayerEvent) -> bytes:
    return dedup_key(event.client_id, event.view_id, event.event)


class RecentEvents:
    """Used by the writer's worker thread and by the refill at once, hence the lock.

    Keys are `wire.dedup_key`s. The consumer passes a batch's keys and times as lists
    (`unseen_keys`, `remember_keys`): when nothing in a batch was seen before, the usual case,
    that is checked and learnt by set and dict operations, without a Python loop per event.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._generation_size = max(capacity // 2, 1)
        self._current: dict[bytes, int] = {}  # key -> ts_ms of its newest stored copy
        self._previous: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    @property
    def refill_size(self) -> int:
        """How many stored keys a refill loads: no more than the window surely keeps, so a
        refill never pushes out a key the writer stored while it ran."""
        return self._generation_size

    def unseen(self, events: Sequence[PlayerEvent], *,
               replay: bool = False) -> list[PlayerEvent]:
        """The events whose key is neither in the window nor earlier in `events`; in a
        `replay`, a key in the window with the event's own time does not count as seen.

        Nothing is remembered yet: call `remember` once they are stored, so a failed insert
        does not turn the retry of its events into "duplicates".
        """
        fresh = self.unseen_keys([_key(e) for e in events], [e.ts_ms for e in events],
                                 replay=replay)
        return list(events) if fresh is None else [events[i] for i in fresh]

    def unseen_keys(self, keys: Sequence[bytes], ts_ms: Sequence[int], *,
                    replay: bool = False) -> list[int] | None:
        """`unseen` by key and time: the indexes of the unseen events, None if all are."""
        with self._lock:
            if not replay:
                distinct = set(keys)
                if len(distinct) == len(keys) and self._current.keys().isdisjoint(distinct) \
                        and self._previous.keys().isdisjoint(distinct):
                    return None
            fresh: list[int] = []
            batch: set[bytes] = set()
            for index, key in enumerate(keys):
                if key in batch:
                    continue
                stored = self._current.get(key, self._previous.get(key))
                if stored is not None and not (replay and stored == ts_ms[index]):
                    continue
                batch.add(key)
                fresh.append(index)
        return fresh

    def remember(self, events: Sequence[PlayerEvent]) -> None:
        self.remember_keys([_key(e) for e in events], [e.ts_ms for e in events])

    def remember_keys(self, keys: Sequence[bytes], ts_ms: Sequence[int]) -> None:
        """Learn stored keys, distinct ones (as `unseen_keys` leaves them), in store order."""
        with self._lock:
            start = 0
            while start < len(keys):
                # What fits in the current generation: it grows by at most one per key.
                stop = start + self._generation_size - len(self._current)
                self._current.update(zip(keys[start:stop], ts_ms[start:stop], strict=True))
                self._turn()
                start = stop

    def recall(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Learn stored `(key, ts_ms)` pairs (`stored_pairs`: the key as text), oldest first,
        so the newest stay."""
        with self._lock:
            for text, ts_ms in pairs:
                key = text.encode()
                # The newest stored copy is the one a replay of the last recorded range holds.
                known = self._current.get(key, self._previous.get(key, ts_ms))
                self._current[key] = max(known, ts_ms)
                self._turn()

    def _turn(self) -> None:
        if len(self._current) >= self._generation_size:
            self._previous, self._current = self._current, {}


# The newest rows of the horizon. player_events is partitioned by month and ordered by
# (client_id, ts): the ts bound prunes every older month's part by its minmax index and, inside
# the current month's parts, the granules of clients with older data; what is left is read
# whole (four columns) and top-N sorted, so the cost grows with the rows of the horizon.
# The key is wire.dedup_key's text: toString of a UInt32 is its decimal digits, as JSON's.
_RECENT = (f"SELECT concat(toString(view_id), toString(event), toString(client_id)),"
           f" toUnixTimestamp64Milli(ts)"
           f" FROM {TABLE} WHERE ts >= fromUnixTimestamp64Milli({{since:Int64}}, 'UTC')")
# Kafka's default partitioner (aiokafka's and the Java client's) for a keyed message is
# murmur2(key) & 0x7fffffff % partitions; kafkaMurmurHash is exactly that hash, and the key is
# the view id's canonical text (ingest/collector/kafka_sink.py).
_OWNED = (" AND has(splitByChar(',', {owned:String}),"
          " toString(kafkaMurmurHash(toString(view_id)) % {partitions:UInt32}))")
_NEWEST = " ORDER BY ts DESC LIMIT {limit:UInt64}"


def stored_pairs(storage: Storage, since_ms: int, limit: int,
                 partitions: PartitionFilter | None = None) -> list[tuple[str, int]]:
    """The keys and times of the newest `limit` events stored at `since_ms` or later, oldest
    first (for `recall`); with `partitions`, only those of the views Kafka puts in the owned
    partitions."""
    params: Params = {"since": since_ms, "limit": limit}
    sql = _RECENT
    if partitions is not None:
        sql += _OWNED
        params = {**params, "partitions": partitions.total,
                  "owned": ",".join(map(str, sorted(partitions.owned)))}
    rows = storage.query(sql + _NEWEST, params)
    return [(str(key), int(ts)) for key, ts in reversed(rows)]
