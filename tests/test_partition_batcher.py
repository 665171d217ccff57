"""Cutting a partition into contiguous offset ranges (architecture §5): in memory, no broker."""

from __future__ import annotations

from collections.abc import Sequence

from viewstats.core.events import PlayerEvent
from viewstats.ingest import wire
from viewstats.ingest.consumer.assignment import Lease, Partition
from viewstats.ingest.consumer.partition_batcher import Batch, PartitionBatcher

EVENT = PlayerEvent(1, 1_714_521_600_000, "watch", "vod", "v-1",
                    "00000000-0000-4000-8000-000000000001", "AU", "example.com")


class Record:
    def __init__(self, offset: int, value: bytes | None) -> None:
        self.offset, self.key, self.value = offset, None, value


def _records(offsets: Sequence[int]) -> list[Record]:
    """Messages at these offsets; those at multiples of 5 do not decode."""
    return [Record(o, wire.encode(EVENT) if o % 5 else b"{") for o in offsets]


def _ranges(batches: Sequence[Batch]) -> list[tuple[int, int, int, int]]:
    return [(b.first, b.last, len(b.rows), len(b.rejected)) for b in batches]


def _batcher(start: int, cut_at: int | None, max_messages: int) -> PartitionBatcher:
    return PartitionBatcher(Lease(Partition("t", 0)), start, cut_at, max_messages)


def test_batches_are_contiguous_ranges_cut_by_size_and_age() -> None:
    batcher = _batcher(10, None, max_messages=4)
    # Offsets below the start are covered already; 17-18 are a gap (compacted away).
    done = batcher.add(_records([8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20]), now=0.0)
    assert _ranges(done) == [(10, 13, 3, 1), (14, 19, 3, 1)]
    assert batcher.due(0.1, max_age=0.2) is None
    aged = batcher.due(0.2, max_age=0.2)
    assert aged is not None and _ranges([aged]) == [(20, 20, 0, 1)]
    assert batcher.pending == 0 and batcher.cut_now(0.3) is None


def test_a_recorded_range_is_cut_exactly_however_the_messages_arrive() -> None:
    batcher = _batcher(100, 106, max_messages=2)
    assert batcher.add(_records([100, 101, 102]), now=0.0) == []  # not by size, nor by age
    assert batcher.due(5.0, max_age=0.0) is None and batcher.cut_now(5.0) is None
    done = batcher.add(_records([103, 104, 105, 106, 107, 108]), now=1.0)
    assert _ranges(done) == [(100, 106, 5, 2), (107, 108, 2, 0)]


def test_a_recorded_range_ends_at_its_last_offset_even_when_that_message_is_gone() -> None:
    batcher = _batcher(100, 105, max_messages=50)
    done = batcher.add(_records([101, 103, 109]), now=0.0)
    assert _ranges(done) == [(100, 105, 2, 0)]
    assert batcher.pending == 1


def test_messages_fetched_again_after_a_rewind_are_taken_once() -> None:
    batcher = _batcher(10, None, max_messages=100)
    assert batcher.add(_records(range(10, 16)), now=0.0) == []  # open: 10-15
    assert batcher.add(_records(range(12, 20)), now=0.1) == []  # 12-15 again after a rewind
    assert batcher.pending == 10
    cut = batcher.cut_now(0.2)
    assert cut is not None and _ranges([cut]) == [(10, 19, 8, 2)]
    assert batcher.add(_records(range(10, 21)), now=0.3) == []  # all but 20 already cut
    assert batcher.pending == 1


def test_every_batch_carries_the_lease_it_was_cut_under() -> None:
    lease = Lease(Partition("t", 3))
    batcher = PartitionBatcher(lease, 0, None, max_messages=2)
    done = batcher.add(_records(range(5)), now=0.0)
    last = batcher.cut_now(0.1)
    assert last is not None
    assert [b.lease for b in [*done, last]] == [lease] * 3
    rejected = [r for b in [*done, last] for r in b.rejected]
    assert [(r.offset, r.value) for r in rejected] == [(0, b"{")]
