"""The dedup window's refill (ingest/consumer/window_refill.py): which partitions a refill
covers, and what makes them load again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from viewstats.core.storage import Storage
from viewstats.ingest.consumer import window_refill
from viewstats.ingest.consumer.assignment import Partition
from viewstats.ingest.dedup import RecentEvents, stored_pairs

P0, P1 = Partition("events", 0), Partition("events", 1)


def _loads(refill: window_refill.WindowRefill, partition: Partition, held: list[Partition],
           monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether covering `partition` read the database."""
    read: list[object] = []

    def counted(*args: Any) -> Any:
        read.append(args)
        return stored_pairs(*args)

    monkeypatch.setattr(window_refill, "stored_pairs", counted)
    asyncio.run(refill.cover(partition, held, 2))
    return bool(read)


@pytest.mark.chdb
def test_a_partition_held_at_a_refill_is_covered_until_forgotten(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    refill = window_refill.WindowRefill(storage, RecentEvents(1000), 3600)
    assert _loads(refill, P0, [P0, P1], monkeypatch)
    assert not _loads(refill, P1, [P0, P1], monkeypatch)  # covered by the first refill
    refill.forget([P0])
    assert _loads(refill, P0, [P0], monkeypatch)
    assert not _loads(refill, P1, [P0, P1], monkeypatch)
    # Replaced clients: every partition loads again, held when they stalled or not yet taken.
    refill.forget_all()
    assert _loads(refill, P1, [P1], monkeypatch)
