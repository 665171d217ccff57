from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from viewstats.core.events import PlayerEvent
from viewstats.core.storage import Storage, StorageError
from viewstats.ingest.collector.embedded_sink import EmbeddedSink

pytestmark = pytest.mark.chdb
NOON = 1_714_564_800_000


def _stored(storage: Storage, client_id: int) -> list[tuple[str, str]]:
    rows = storage.query("SELECT toString(view_id), toString(event) FROM player_events "
                         "WHERE client_id = {c:UInt32} ORDER BY view_id, event", {"c": client_id})
    return [(r[0], r[1]) for r in rows]


async def _submit_all(batcher: EmbeddedSink, groups: Sequence[Sequence[PlayerEvent]]) -> None:
    await batcher.start()
    try:
        await asyncio.gather(*(batcher.submit(g) for g in groups))
    finally:
        await batcher.stop()


def test_each_submit_returns_once_its_events_are_stored(storage: Storage) -> None:
    client_id = fresh_client_id()
    batcher = EmbeddedSink(storage, max_rows=7, max_delay_s=0.01)

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
    asyncio.run(_submit_all(EmbeddedSink(storage, max_rows=64, max_delay_s=0.005), groups))
    assert len(_stored(storage, client_id)) == 100


def test_a_failed_insert_fails_its_requests_and_a_retry_is_not_a_duplicate(
        storage: Storage) -> None:
    client_id = fresh_client_id()
    event = watch(client_id, NOON, "DE", 1)

    async def scenario() -> None:
        batcher = EmbeddedSink(storage, max_delay_s=0.001)
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
        batcher = EmbeddedSink(storage)
        await batcher.start()
        await batcher.stop()
        with pytest.raises(RuntimeError, match="not running"):
            await batcher.submit([watch(1, NOON, "AU", 1)])

    asyncio.run(scenario())
