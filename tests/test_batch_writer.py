"""The consumer's writer against in-memory fakes of its seams (architecture §5, §11): no broker.

The fakes log every step (dead letter, range recorded, insert, insert refused, commit) in the
order the writer took them; the broker tests in test_consumer.py cover the tier above.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import numpy.typing as npt
import orjson
import pytest

from viewstats.core.events import PlayerEvent
from viewstats.core.storage import (
    Params,
    QuerySettings,
    Row,
    StorageError,
)
from viewstats.core.storage.write_health import WriteHealth
from viewstats.core.write_announcements import listen
from viewstats.ingest import wire
from viewstats.ingest.consumer import batch_writer
from viewstats.ingest.consumer.assignment import Assignment, Lease, Partition
from viewstats.ingest.consumer.batch_writer import BatchWriter, CommitRejected, ConsumerStats
from viewstats.ingest.consumer.partition_batcher import Batch, Rejected
from viewstats.ingest.dedup import RecentEvents

P0, P1 = Partition("t", 0), Partition("t", 1)
FOREVER = 10**9
Step = tuple[object, ...]


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_writer, "RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(batch_writer, "RETRY_MAX_S", 0.004)


class FakeStorage:
    """Records ranges and inserts in the log; refuses `failures[partition]` inserts first."""

    exclusive = True  # no write_records: what the writer stores is told to this process

    def __init__(self, log: list[Step]) -> None:
        self.log, self.failures = log, {0: 0, 1: 0}
        self.health = WriteHealth(lambda: None)

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        if table == "consumer_batches":
            step = (columns["partition"][0], columns["first_offset"][0], columns["last_offset"][0])
            self.log.append(("record", *step))
            return 1
        raise AssertionError("events go in as JSON lines")

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        assert table == "player_events" and settings is not None
        _, partition, offsets = str(settings["insert_deduplication_token"]).split(":")
        if self.failures[int(partition)] > 0:
            self.failures[int(partition)] -= 1
            self.log.append(("refused", int(partition), offsets))
            raise StorageError("Read-only file system")
        views = tuple(orjson.loads(line)["view_id"] for line in lines)
        self.log.append(("insert", int(partition), offsets, views))
        return len(lines)

    def query(self, sql: str, params: Params | None = None,
              settings: QuerySettings | None = None) -> list[Row]:
        raise AssertionError("the writer only inserts")

    def query_columns(self, sql: str, params: Params | None = None,
                      settings: QuerySettings | None = None) -> list[npt.NDArray[Any]]:
        raise AssertionError("the writer only inserts")

    def command(self, sql: str, settings: QuerySettings | None = None) -> None:
        raise AssertionError("the writer only inserts")

    def close(self) -> None: ...


class Harness:
    """A writer whose Kafka is two logging callables and whose database is FakeStorage."""

    def __init__(self) -> None:
        self.log: list[Step] = []
        self.storage = FakeStorage(self.log)
        self.in_group = {P0, P1}
        self.assignment = Assignment(self.in_group.__contains__)
        self.leases = {p.partition: self.assignment.take(p) for p in (P0, P1)}
        self.reject_commits: set[int] = set()
        self.commit_gate = asyncio.Event()
        self.commit_gate.set()
        self.dedup, self.stats = RecentEvents(100), ConsumerStats()
        self.writer = BatchWriter(self.storage, self.assignment, self.commit, self.dead_letter,
                                  self.dedup, self.stats)

    async def commit(self, partition: Partition, offset: int) -> None:
        await self.commit_gate.wait()
        if partition.partition in self.reject_commits:
            raise CommitRejected("the group has rebalanced")
        self.log.append(("commit", partition.partition, offset))

    async def dead_letter(self, partition: Partition, rejected: Sequence[Rejected]) -> None:
        self.log.append(("dead_letter", partition.partition, tuple(r.offset for r in rejected)))

    def batch(self, partition: int, first: int, last: int, *, rejected: Sequence[int] = (),
              views: Sequence[int] | None = None, lease: Lease | None = None) -> Batch:
        """Offsets first-last: the `rejected` ones undecodable, the others a view each."""
        views = [o for o in range(first, last + 1) if o not in rejected] if views is None else views
        return Batch(lease or self.leases[partition], first, 0.0, last, last - first + 1,
                     wire.Rows.of([_watch(partition, v) for v in views]),
                     [Rejected(o, None, b"{", "not JSON") for o in rejected])

    def start(self, *batches: Batch) -> asyncio.Task[None]:
        queue: asyncio.Queue[Batch | None] = asyncio.Queue()
        for batch in [*batches, None]:
            queue.put_nowait(batch)
        return asyncio.create_task(self.writer.run(queue))

    def steps(self, kind: str, partition: int | None = None) -> list[Step]:
        return [s for s in self.log if s[0] == kind and partition in (None, s[1])]


def _watch(partition: int, view: int) -> PlayerEvent:
    return PlayerEvent(1, 1_714_521_600_000, "watch", "vod", "v-1",
                       f"00000000-0000-4000-8000-{partition:04x}{view:08x}", "AU", "")


def _run(scenario: Callable[[Harness], Awaitable[None]]) -> Harness:
    async def main() -> Harness:
        harness = Harness()  # its events belong to this loop
        await scenario(harness)
        return harness
    return asyncio.run(main())


async def _until(check: Callable[[], bool]) -> None:
    """Poll: what is checked changes in the writer's worker thread too."""
    async with asyncio.timeout(5):
        while True:
            if check():
                return
            await asyncio.sleep(0.001)


def test_a_batch_is_committed_only_after_it_is_stored() -> None:
    async def scenario(h: Harness) -> None:
        await h.start(h.batch(0, 0, 9), h.batch(1, 0, 4), h.batch(0, 10, 19))

    h = _run(scenario)
    assert [s[:3] for s in h.log if s[1] == 0] == [
        ("record", 0, 0), ("insert", 0, "0-9"), ("commit", 0, 10),
        ("record", 0, 10), ("insert", 0, "10-19"), ("commit", 0, 20)]
    assert h.steps("commit", 1) == [("commit", 1, 5)]
    assert (h.stats.batches, h.stats.inserted, h.stats.duplicates) == (3, 25, 0)


def test_the_next_range_is_recorded_only_once_the_previous_one_is_committed() -> None:
    async def scenario(h: Harness) -> None:
        h.commit_gate.clear()  # commits hang, as when the coordinator is slow
        task = h.start(h.batch(0, 0, 9), h.batch(1, 0, 9), h.batch(0, 10, 19))
        await _until(lambda: len(h.steps("insert", 1)) == 1)  # another partition goes on
        await asyncio.sleep(0.05)
        assert h.steps("record", 0) == [("record", 0, 0, 9)] and not h.steps("commit")
        settled = asyncio.create_task(h.writer.settle())  # what a revoke waits for
        await asyncio.sleep(0.05)
        assert not settled.done()
        h.commit_gate.set()
        await settled
        await task

    h = _run(scenario)
    p0 = [s[0] for s in h.log if s[1] == 0]
    assert p0 == ["record", "insert", "commit", "record", "insert", "commit"]


def test_a_failed_commit_gives_the_partition_up_and_later_batches_are_skipped() -> None:
    async def scenario(h: Harness) -> None:
        h.reject_commits.add(0)
        await h.start(h.batch(0, 0, 9), h.batch(0, 10, 19), h.batch(1, 0, 9))

    h = _run(scenario)
    assert [s[:3] for s in h.log if s[1] == 0] == [("record", 0, 0), ("insert", 0, "0-9")]
    assert h.steps("commit") == [("commit", 1, 10)]
    assert not h.assignment.holds(h.leases[0]) and h.assignment.holds(h.leases[1])


def test_storage_failures_are_retried_until_stored_and_nothing_is_committed_meanwhile() -> None:
    async def scenario(h: Harness) -> None:
        h.storage.failures[0] = 3
        await h.start(h.batch(0, 0, 9), h.batch(1, 0, 9))

    h = _run(scenario)
    stored = h.log.index(h.steps("insert", 0)[0])
    # Each retry records the range again (harmless); nothing else is stored or committed
    # meanwhile, not even another partition's batch.
    assert h.log[:stored] == [("record", 0, 0, 9), ("refused", 0, "0-9")] * 3 + [
        ("record", 0, 0, 9)]
    assert h.steps("commit") == [("commit", 0, 10), ("commit", 1, 10)]
    assert h.stats.inserted == 20


@pytest.mark.parametrize("how", ["revoke", "stop"])
def test_a_revoke_or_a_stop_during_retries_abandons_the_batch_and_its_partition(
        how: str) -> None:
    async def scenario(h: Harness) -> None:
        h.storage.failures[0] = FOREVER
        task = h.start(h.batch(0, 0, 9), h.batch(0, 10, 19), h.batch(1, 0, 9))
        await _until(lambda: len(h.steps("refused")) >= 2)
        if how == "revoke":
            h.assignment.revoke([P0])
        else:
            h.writer.stop_retrying()
        async with asyncio.timeout(5):  # a writer that kept retrying would never return
            await task

    h = _run(scenario)
    assert {s[:3] for s in h.log if s[1] == 0} == {("record", 0, 0), ("refused", 0, "0-9")}
    assert h.steps("commit") == [("commit", 1, 10)]  # a stop still writes what goes in at once
    assert not h.assignment.holds(h.leases[0])
    unstored = h.batch(0, 0, 9).rows  # its replay must not be taken for duplicates
    assert h.dedup.unseen_keys(unstored.keys, unstored.ts_ms) is None


def test_dead_letters_are_sent_before_the_batch_is_stored_and_committed() -> None:
    async def scenario(h: Harness) -> None:
        await h.start(h.batch(0, 0, 9, rejected=[3, 7]), h.batch(0, 10, 12, rejected=[10, 12],
                                                                  views=[]))

    h = _run(scenario)
    assert [s[0] for s in h.log] == ["dead_letter", "record", "insert", "commit",
                                     "dead_letter", "record", "commit"]  # all undecodable
    assert h.steps("dead_letter") == [("dead_letter", 0, (3, 7)), ("dead_letter", 0, (10, 12))]
    assert h.steps("commit") == [("commit", 0, 10), ("commit", 0, 13)]
    assert h.stats.dead_lettered == 4


def test_the_dedup_window_learns_rows_only_once_they_are_stored() -> None:
    async def scenario(h: Harness) -> None:
        h.storage.failures[0] = 1  # the first insert fails after its range was recorded
        await h.start(h.batch(0, 0, 2), h.batch(0, 3, 5, views=[1, 2, 9]))

    h = _run(scenario)
    views = [tuple(_watch(0, v).view_id for v in vs) for vs in ([0, 1, 2], [9])]
    assert [s[3] for s in h.steps("insert")] == views  # all of 0-2 on the retry; then only 9
    assert (h.stats.inserted, h.stats.duplicates) == (4, 2)


class Listener:
    """Logs what the writer announces (viewstats/core/write_announcements.py) among its steps."""

    def __init__(self, log: list[Step]) -> None:
        self.log = log
        listen(self)

    def inserted(self, client_ids: Collection[int], first_ms: int, last_ms: int) -> None:
        self.log.append(("announced", frozenset(client_ids), first_ms, last_ms))

    def rewritten(self) -> None:
        raise AssertionError("the writer only inserts")


def test_a_stored_batch_is_announced_before_it_is_committed() -> None:
    """So an API in this process drops what it touched before the offsets move on. A refused
    insert is announced too: part of it may have landed."""
    async def scenario(h: Harness) -> None:
        h.storage.failures[0] = 1
        _listener = Listener(h.log)  # held weakly by the announcements: kept here
        await h.start(h.batch(0, 0, 9))

    h = _run(scenario)
    announced = ("announced", frozenset({1}), _watch(0, 0).ts_ms, _watch(0, 0).ts_ms)
    assert [s[0] for s in h.log] == ["record", "refused", "announced", "record", "insert",
                                     "announced", "commit"]
    assert h.steps("announced") == [announced, announced]


def test_batches_of_a_lease_no_longer_held_are_never_written() -> None:
    async def scenario(h: Harness) -> None:
        old = h.leases[0]
        h.assignment.revoke([P0])
        new = h.assignment.take(P0)  # the partition came back: batches cut before stay out
        h.in_group.discard(P1)  # the group moved it; the revoke has not reached us yet
        await h.start(h.batch(0, 0, 9, rejected=[5], lease=old), h.batch(1, 0, 9),
                      h.batch(0, 0, 9, lease=new))
        h.in_group.add(P1)
        await h.start(h.batch(1, 10, 19))  # given up: stays so until the group revokes it

    h = _run(scenario)
    assert [s[:3] for s in h.log] == [("record", 0, 0), ("insert", 0, "0-9"), ("commit", 0, 10)]
    assert not h.steps("dead_letter")
    assert not h.assignment.holds(h.leases[1])
