"""Structured logs, and the limit on aiokafka's repeated lines during a broker outage."""

from __future__ import annotations

import logging

from viewstats.core.logs import RepeatLimit


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_a_repeated_aiokafka_line_passes_once_per_interval_and_counts_the_rest() -> None:
    clock = Clock()
    limit = RepeatLimit("aiokafka", interval_s=10, clock=clock)
    first = _record("aiokafka.conn", "Unable connect to node with id %s")
    assert limit.filter(first)
    assert not any(limit.filter(_record("aiokafka.conn", "Unable connect to node with id %s"))
                   for _ in range(3000))
    assert limit.filter(_record("aiokafka.cluster", "Unable connect to node with id %s"))
    clock.now = 10.5
    later = _record("aiokafka.conn", "Unable connect to node with id %s")
    assert limit.filter(later)
    assert "(3000 like it in the last 10 s)" in later.getMessage()


def test_other_loggers_are_never_limited() -> None:
    limit = RepeatLimit("aiokafka", interval_s=10, clock=Clock())
    assert all(limit.filter(_record("viewstats.consumer", "stored a batch")) for _ in range(50))


def test_aiokafka_info_lines_are_never_limited() -> None:
    # The group's state changes: one held back would never be shown.
    limit = RepeatLimit("aiokafka", interval_s=10, clock=Clock())
    assert all(limit.filter(_record("aiokafka.consumer.group_coordinator",
                                    "Discovered coordinator %s for group %s", logging.INFO))
               for _ in range(5))
