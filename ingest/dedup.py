"""The writer's bounded window of recently seen `(view_id, event)` pairs (architecture §3).

A player retry (same view, same event) arriving while its first copy is in the window is
dropped. The window is two generations of sets: it always remembers at least the last
`capacity // 2` and at most the last `capacity` distinct pairs this writer saw (default
1,000,000: about 120 MB when full). A retry older than that, or arriving after the writer
restarted, is counted again. With Kafka all of a view's events share a partition
(key = view_id), so one consumer sees every copy of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from viewstats.core.events import PlayerEvent

DEFAULT_CAPACITY = 1_000_000


class RecentEvents:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._generation_size = max(capacity // 2, 1)
        self._current: set[str] = set()
        self._previous: set[str] = set()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def unseen(self, events: Iterable[PlayerEvent]) -> list[PlayerEvent]:
        """The events whose pair is neither in the window nor earlier in `events`.

        Nothing is remembered yet: call `remember` once they are stored, so a failed insert
        does not turn the retry of its events into "duplicates".
        """
        fresh: list[PlayerEvent] = []
        batch: set[str] = set()
        for event in events:
            key = event.view_id + event.event
            if key in batch or key in self._current or key in self._previous:
                continue
            batch.add(key)
            fresh.append(event)
        return fresh

    def remember(self, events: Iterable[PlayerEvent]) -> None:
        for event in events:
            self._current.add(event.view_id + event.event)
            if len(self._current) >= self._generation_size:
                self._previous, self._current = self._current, set()
