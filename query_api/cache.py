"""Answers of the countries endpoint, kept until a write could change them.

Exact, not time-based: an entry is dropped as soon as an insert touches its client inside its
window (a coarse check: the block's clients and its time span), and every entry goes on a
statement that could change anything. It is used only where every write is seen, i.e. on the
embedded engine, whose data path no other process can open. Live ingest writes "now", so
windows over the past stay cached while their client keeps receiving views.

A query racing a write must not store what it read before the write landed: `store` takes the
token `begin` returned before the query ran and refuses when the client was written since.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import NamedTuple, cast

from viewstats.core.events import TABLE

MAX_WRITTEN_CLIENTS = 100_000


class Key(NamedTuple):
    client_id: int
    event_type: str | None
    start_ms: int
    end_ms: int


Answer = list[tuple[str, int]]


class AnswerCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._by_client: dict[int, set[Key]] = {}
        self._writes = 0  # a counter of invalidating writes
        self._client_written: dict[int, int] = {}  # client -> value of _writes when written
        self._all_written = 0

    def get(self, key: Key) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def begin(self) -> int:
        with self._lock:
            return self._writes

    def store(self, key: Key, answer: Answer, token: int) -> None:
        with self._lock:
            if max(self._all_written, self._client_written.get(key.client_id, 0)) > token:
                return
            self._answers[key] = answer
            self._by_client.setdefault(key.client_id, set()).add(key)
            if len(self._answers) > self._max:
                old, _ = self._answers.popitem(last=False)
                self._by_client[old.client_id].discard(old)

    def on_write(self, table: str | None,
                 columns: Mapping[str, Sequence[object]] | None) -> None:
        if table is not None and table != TABLE:
            return  # bookkeeping tables never change an answer
        with self._lock:
            self._writes += 1
            if columns is None or not {"ts", "client_id"} <= columns.keys():
                self._all_written = self._writes
                self._answers.clear()
                self._by_client.clear()
                return
            stamps = cast(Sequence[int], columns["ts"])
            low, high = min(stamps), max(stamps)
            if len(self._client_written) > MAX_WRITTEN_CLIENTS:
                # Beacons may name any client id: rather than remember them all, count this
                # write as touching every client for the queries in flight.
                self._client_written.clear()
                self._all_written = self._writes
            for client_id in set(cast(Sequence[int], columns["client_id"])):
                self._client_written[client_id] = self._writes
                keys = self._by_client.get(client_id, set())
                for key in [k for k in keys if k.start_ms <= high and low < k.end_ms]:
                    keys.discard(key)
                    del self._answers[key]
