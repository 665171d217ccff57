"""Cutting one partition's messages into batches of contiguous offset ranges (architecture §5).

A batch carries its range [first, last] with its rows, as in arroyo: the range is what gets
recorded, what names the insert's deduplication token and what is committed (`last + 1`).
Ranges are contiguous by construction (each starts where the previous one ended, the first at
the committed offset), so an offset gap left by compaction or retention never shifts a range.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from viewstats.ingest import wire
from viewstats.ingest.consumer.assignment import Lease


class Message(Protocol):
    """The part of aiokafka's ConsumerRecord a batch needs."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def _offset(message: Message) -> int:
    return message.offset


@dataclass(frozen=True, slots=True)
class Rejected:
    """An undecodable message, bound for the dead-letter topic."""

    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass(eq=False, slots=True)
class Batch:
    lease: Lease  # the partition, as taken when the batch was cut: see assignment.py
    first: int
    started: float  # monotonic time of its first message
    last: int = -1
    messages: int = 0
    rows: wire.Rows = field(default_factory=wire.Rows)  # the messages that are events
    rejected: list[Rejected] = field(default_factory=list)
    replay: bool = False  # cut at a recorded range: its first attempt may have stored rows


class PartitionBatcher:
    """One owned partition: the open batch and where the next range must start and end.

    `cut_at` is the last offset of a range recorded by an earlier owner that starts where this
    owner starts; until it is reached the open batch is neither cut by size nor by age.
    """

    def __init__(self, lease: Lease, start: int, cut_at: int | None, max_messages: int) -> None:
        self._lease = lease
        self._next, self._cut_at = start, cut_at
        self._max_messages = max_messages
        self._open: Batch | None = None

    @property
    def pending(self) -> int:
        """Messages held in the open batch."""
        return self._open.messages if self._open else 0

    @property
    def may_cut(self) -> bool:
        return self._open is not None and self._cut_at is None

    def add(self, messages: Sequence[Message], now: float) -> list[Batch]:
        """Take messages in offset order; return the batches this completed."""
        done, i, end = [], 0, len(messages)
        # Already held: in a committed or cut range, or in the open batch (after a rewind).
        held = self._open.last if self._open and self._open.messages else self._next - 1
        while i < end and messages[i].offset <= held:
            i += 1
        while i < end:
            batch = self._open or self._start(now)
            if self._cut_at is None:
                stop = min(end, i + self._max_messages - batch.messages)
            else:
                stop = bisect.bisect_right(messages, self._cut_at, i, end, key=_offset)
            self._decode(batch, messages, i, stop)
            if self._cut_at is not None:
                if stop < end or batch.last == self._cut_at:
                    done.append(self._cut(self._cut_at, now))
            elif batch.messages >= self._max_messages:
                done.append(self._cut(batch.last, now))
            i = stop
        return done

    @staticmethod
    def _decode(batch: Batch, messages: Sequence[Message], start: int, stop: int) -> None:
        # The consumer's hot loop: one pass over the messages to take their values, the rest
        # per poll in wire.decode_many.
        if stop <= start:
            return
        rows, rejected = wire.decode_many([m.value for m in messages[start:stop]])
        batch.rows.extend(rows)
        for index, reason in rejected:
            message = messages[start + index]
            batch.rejected.append(Rejected(message.offset, message.key, message.value, reason))
        batch.messages += stop - start
        batch.last = messages[stop - 1].offset

    def due(self, now: float, max_age: float) -> Batch | None:
        """The open batch, cut, if it is `max_age` seconds old and free to be cut."""
        if self._open is not None and self.may_cut and now - self._open.started >= max_age:
            return self._cut(self._open.last, now)
        return None

    def cut_now(self, now: float) -> Batch | None:
        """The open batch, cut where it ends, unless a recorded range forbids it."""
        return self._cut(self._open.last, now) if self._open and self.may_cut else None

    def _start(self, now: float) -> Batch:
        self._open = Batch(self._lease, self._next, now)
        return self._open

    def _cut(self, last: int, now: float) -> Batch:
        # A recorded range whose messages are all gone (compacted) still closes as an empty batch.
        batch = self._open or self._start(now)
        batch.last, batch.replay = last, self._cut_at is not None
        self._open, self._next, self._cut_at = None, last + 1, None
        return batch
