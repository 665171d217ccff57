from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Mapping, Sequence

import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from tests.support.storage_wrapper import StorageWrapper
from viewstats.core.events import TABLE, PlayerEvent
from viewstats.core.storage import QuerySettings, Storage, StorageError
from viewstats.ingest.collector.embedded_sink import EmbeddedSink
from viewstats.ingest.collector.sink import SinkUnavailable

pytestmark = pytest.mark.chdb
NOON = 1_714_564_800_000
FOREVER_S = 3600.0  # a linger no test waits for: a batch that goes in was closed by another rule
# Only keeps a broken close rule from hanging the run; no test waits this long when it passes.
HANG_GUARD_S = 120.0
LINGER_S = 0.001


class GatedStorage(StorageWrapper):
    """The test database, counting the rows of each insert into `player_events`. While `gate`
    is clear such an insert waits for it in the writer's thread (`entered` says one does);
    `fail_next` makes the next one fail instead of inserting."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.inserts: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        self.gate.set()
        self.fail_next = False

    def insert(self, table: str, columns: Mapping[str, Sequence[object]],
               settings: QuerySettings | None = None, *,
               millis: Collection[str] = ()) -> int:
        if table == TABLE:
            self.inserts.append(len(next(iter(columns.values()))))
            self.entered.set()
            self.gate.wait()
            if self.fail_next:
                self.fail_next = False
                raise StorageError("Read-only file system")
        return self._storage.insert(table, columns, settings, millis=millis)

    def insert_json(self, table: str, lines: Sequence[bytes],
                    settings: QuerySettings | None = None) -> int:
        raise AssertionError("the embedded sink inserts columns")


async def _submitted(sink: EmbeddedSink, groups: Sequence[Sequence[PlayerEvent]]
                     ) -> list[asyncio.Task[None]]:
    """Submits of `groups` that have each joined a batch (a submit joins before it awaits)."""
    tasks = [asyncio.create_task(sink.submit(group)) for group in groups]
    await asyncio.sleep(0)
    return tasks


async def _while_an_insert_runs(sink: EmbeddedSink, gated: GatedStorage, first: PlayerEvent,
                                later: Sequence[PlayerEvent]
                                ) -> list[BaseException | None]:
    """Submit `first`, then each of `later` while its insert is held, each after the linger of
    the one before ran out; what each submit raised."""
    gated.gate.clear()
    await sink.start()
    tasks = await _submitted(sink, [[first]])
    await asyncio.to_thread(gated.entered.wait)
    for event in later:
        tasks += await _submitted(sink, [[event]])
        await asyncio.sleep(2 * LINGER_S)
    gated.gate.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                      HANG_GUARD_S)
    await sink.stop()
    return list(outcomes)


def _stored(storage: Storage, client_id: int) -> list[tuple[str, str]]:
    rows = storage.query("SELECT toString(view_id), toString(event) FROM player_events "
                         "WHERE client_id = {c:UInt32} ORDER BY view_id, event", {"c": client_id})
    return [(r[0], r[1]) for r in rows]


def _views(storage: Storage, table: str, client_id: int) -> int:
    rows = storage.query(f"SELECT sum(views) FROM {table} WHERE client_id = {{c:UInt32}}",
                         {"c": client_id})
    return int(rows[0][0])


async def _submit_all(batcher: EmbeddedSink, groups: Sequence[Sequence[PlayerEvent]]) -> None:
    await batcher.start()
    try:
        await asyncio.gather(*(batcher.submit(g) for g in groups))
    finally:
        await batcher.stop()


def test_each_submit_returns_once_its_events_are_stored(storage: Storage) -> None:
    client_id = fresh_client_id()
    batcher = EmbeddedSink(storage, max_rows=7, linger_s=0.01)

    async def scenario() -> list[int]:
        await batcher.start()
        seen = []
        for i in range(20):
            await batcher.submit([watch(client_id, NOON, "AU", i)])
            seen.append(len(_stored(storage, client_id)))
        await batcher.stop()
        return seen

    assert asyncio.run(scenario()) == list(range(1, 21))


def test_concurrent_requests_share_batches_and_duplicates_count_once(storage: Storage) -> None:
    client_id = fresh_client_id()
    groups = [[watch(client_id, NOON, "US", i % 50), watch(client_id, NOON, "US", i % 50,
                                                           event="start")] for i in range(300)]
    asyncio.run(_submit_all(EmbeddedSink(storage, max_rows=64, linger_s=0.005), groups))
    assert len(_stored(storage, client_id)) == 100


def test_a_failed_insert_fails_its_requests_and_a_retry_is_not_a_duplicate(
        storage: Storage) -> None:
    client_id = fresh_client_id()
    event = watch(client_id, NOON, "DE", 1)

    async def scenario() -> None:
        batcher = EmbeddedSink(storage, linger_s=0.001)
        await batcher.start()
        storage.command("RENAME TABLE player_events TO player_events_away")
        try:
            with pytest.raises(StorageError):
                await batcher.submit([event])
        finally:
            storage.command("RENAME TABLE player_events_away TO player_events")
        await batcher.submit([event])
        await batcher.stop()

    asyncio.run(scenario())
    assert _stored(storage, client_id) == [(event.view_id, "watch")]


def test_submit_after_stop_is_refused(storage: Storage) -> None:
    async def scenario() -> None:
        batcher = EmbeddedSink(storage, linger_s=LINGER_S)
        await batcher.start()
        await batcher.stop()
        with pytest.raises(RuntimeError, match="not running"):
            await batcher.submit([watch(1, NOON, "AU", 1)])

    asyncio.run(scenario())


def test_requests_that_arrive_while_an_insert_runs_share_the_next_one(storage: Storage) -> None:
    client_id = fresh_client_id()
    events = [watch(client_id, NOON, "FR", i) for i in range(6)]
    gated = GatedStorage(storage)
    sink = EmbeddedSink(gated, linger_s=LINGER_S)
    outcomes = asyncio.run(_while_an_insert_runs(sink, gated, events[0], events[1:]))
    assert outcomes == [None] * 6
    assert gated.inserts == [1, 5]
    assert len(_stored(storage, client_id)) == 6


def test_a_failed_insert_fails_only_the_requests_of_its_batch(storage: Storage) -> None:
    client_id = fresh_client_id()
    events = [watch(client_id, NOON, "FR", i) for i in range(4)]
    gated = GatedStorage(storage)
    gated.fail_next = True
    sink = EmbeddedSink(gated, linger_s=LINGER_S)
    outcomes = asyncio.run(_while_an_insert_runs(sink, gated, events[0], events[1:]))
    assert isinstance(outcomes[0], StorageError)
    assert outcomes[1:] == [None] * 3
    # The failed insert is settled, under its token, before the next batch goes in.
    assert gated.inserts == [1, 1, 3]
    assert _stored(storage, client_id) == sorted((e.view_id, "watch") for e in events)


def test_an_insert_that_failed_part_way_ends_in_every_table_once(storage: Storage) -> None:
    """A rollup refuses the block after `player_events` took it, as a disk that fills while the
    views write would: the next batch first inserts the same rows under the same token, which
    the engine writes only where they are missing; the player's resend then counts once."""
    client_id = fresh_client_id()
    failed, later = watch(client_id, NOON, "NZ", 1), watch(client_id, NOON, "NZ", 2)
    rollup = "views_by_host_daily"

    def counts() -> tuple[int, int]:
        return (len(_stored(storage, client_id)),
                _views(storage, rollup, client_id))

    async def scenario() -> list[tuple[int, int]]:
        sink = EmbeddedSink(storage, linger_s=LINGER_S)
        await sink.start()
        seen = []
        storage.command(f"ALTER TABLE {rollup} ADD CONSTRAINT refuse CHECK client_id != "
                        f"{client_id}")
        try:
            with pytest.raises(StorageError, match="refuse"):
                await sink.submit([failed])
            seen.append(counts())
        finally:
            storage.command(f"ALTER TABLE {rollup} DROP CONSTRAINT refuse")
        await sink.submit([later, failed])  # the player resends the refused beacon
        seen.append(counts())
        await sink.stop()
        return seen

    assert asyncio.run(scenario()) == [(1, 0), (2, 2)]


def test_a_lone_beacon_is_answered_once_its_linger_ran_out(storage: Storage) -> None:
    client_id = fresh_client_id()
    gated = GatedStorage(storage)

    async def scenario() -> None:
        sink = EmbeddedSink(gated, linger_s=0.05)
        await sink.start()
        await asyncio.wait_for(sink.submit([watch(client_id, NOON, "JP", 1)]), HANG_GUARD_S)
        assert gated.inserts == [1]
        await sink.stop()

    asyncio.run(scenario())
    assert len(_stored(storage, client_id)) == 1


@pytest.mark.parametrize(("requests", "size", "max_rows", "inserts"), [
    (4, 500, 10_000, [2_000]),  # pays for its insert: 2,000 rows x 0.1 ms > any insert's CPU
    (4, 1, 2, [2, 2]),  # full batches
])
def test_a_batch_big_enough_goes_in_without_lingering(
        storage: Storage, requests: int, size: int, max_rows: int, inserts: list[int]) -> None:
    client_id = fresh_client_id()
    gated = GatedStorage(storage)
    events = [watch(client_id, NOON, "BR", i) for i in range(requests * size)]

    async def scenario() -> None:
        sink = EmbeddedSink(gated, linger_s=FOREVER_S, max_rows=max_rows)
        await sink.start()
        submits = (sink.submit(events[i:i + size]) for i in range(0, len(events), size))
        await asyncio.wait_for(asyncio.gather(*submits), HANG_GUARD_S)
        assert gated.inserts == inserts
        await sink.stop()

    asyncio.run(scenario())
    assert len(_stored(storage, client_id)) == len(events)


def test_stop_inserts_the_lingering_batch_and_answers_its_requests(storage: Storage) -> None:
    client_id = fresh_client_id()
    gated = GatedStorage(storage)

    async def scenario() -> None:
        sink = EmbeddedSink(gated, linger_s=FOREVER_S)
        await sink.start()
        tasks = await _submitted(sink, [[watch(client_id, NOON, "IT", i)] for i in range(3)])
        assert gated.inserts == []
        await sink.stop()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert gated.inserts == [3]
    assert len(_stored(storage, client_id)) == 3


def test_past_max_waiting_events_a_request_is_refused_at_once(storage: Storage) -> None:
    client_id = fresh_client_id()
    events = [watch(client_id, NOON, "MX", i) for i in range(5)]

    async def scenario() -> None:
        sink = EmbeddedSink(storage, linger_s=FOREVER_S, max_waiting=3)
        await sink.start()
        tasks = await _submitted(sink, [events[:2]])
        with pytest.raises(SinkUnavailable, match="2 events wait"):
            await sink.submit(events[2:4])
        tasks += await _submitted(sink, [events[4:]])
        await sink.stop()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert _stored(storage, client_id) == sorted(
        (e.view_id, "watch") for e in events[:2] + events[4:])
