"""Writers say what they wrote to `player_events`, so that the query APIs can drop the sealed
buckets it touched (architecture §13). Storage is only transport: it knows no table.

- A database only this process writes (`Storage.exclusive`: the embedded engine): each write is
  announced to this process's listeners as its statement returns, so they hear every write.
  A failed insert is announced too, as the span it tried: part of it may have landed (a
  materialized view failing after the table took the rows).
- A shared database (a server): other processes write too, and no listener here hears them.
  Each insert is recorded in `write_records` once it returned, never before: an API that
  dropped a bucket on a record whose rows were not yet readable could reload it without them
  and keep that for good. The APIs read the records (query_api/write_feed.py). A record that
  fails fails the write, and the writer's replay (deduplicated) records again; a failed insert
  records nothing, as its replay does.

The process keeps one set of listeners: chDB lets a process open one data path, so it has at
most one exclusive database.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Protocol

from viewstats.core.storage import Storage

RECORDS_TABLE = "write_records"  # migration 0007


class Listener(Protocol):
    def inserted(self, client_ids: Collection[int], first_ms: int, last_ms: int) -> None:
        """An insert touched these clients' events at times [first_ms, last_ms]."""

    def rewritten(self) -> None:
        """A statement may have changed any row (DDL, INSERT ... SELECT, TRUNCATE)."""


# Held weakly: a listener hears writes for as long as its owner keeps it, and no longer.
_listeners: weakref.WeakSet[Listener] = weakref.WeakSet()
_lock = threading.Lock()  # writers announce from worker threads


def listen(listener: Listener) -> None:
    """Tell `listener` of each write this process makes to an exclusive database."""
    with _lock:
        _listeners.add(listener)


def _tell(news: Callable[[Listener], None]) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        news(listener)


@contextmanager
def announcing_insert(storage: Storage, client_ids: Collection[int], first_ms: int,
                      last_ms: int) -> Iterator[None]:
    """Around one insert into `player_events` of these clients' events, first and last event
    time `first_ms` and `last_ms`: announced (exclusive) or recorded (shared) once it returned."""
    if not client_ids:  # an empty block changes nothing
        yield
        return
    try:
        yield
    finally:
        if storage.exclusive:
            _tell(lambda listener: listener.inserted(client_ids, first_ms, last_ms))
    if not storage.exclusive:
        storage.insert(RECORDS_TABLE, {"client_ids": [sorted(set(client_ids))],
                                       "ts_from": [first_ms], "ts_to": [last_ms]},
                       {"insert_deduplicate": 0}, millis=("ts_from", "ts_to"))


@contextmanager
def announcing_rewrite(storage: Storage) -> Iterator[None]:
    """Around statements that may change any row of `player_events` or its rollups: announced
    when they return, also when they fail (part of them may have run). On a shared database
    nothing is recorded, as a record names clients and times: restart the APIs after one."""
    try:
        yield
    finally:
        if storage.exclusive:
            _tell(lambda listener: listener.rewritten())
