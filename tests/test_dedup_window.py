"""The dedup window and its refill from what is stored (architecture §3): the window's rules, the
refill query on chDB and on a server, and the embedded sink's refill. The consumer on a real
broker is in test_dedup_horizon.py, the restarts of real processes in test_dedup_restart.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from tests.support.database import fresh_client_id
from tests.support.server_mode import clickhouse_url
from tests.test_consumer import _stored_watches
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.settings import Settings, SettingsError
from viewstats.core.storage import Storage
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.ingest.collector.embedded_sink import EmbeddedSink
from viewstats.ingest.dedup import PartitionFilter, RecentEvents, stored_pairs
from viewstats.ingest.wire import dedup_key
from viewstats.schema.migrations import migrate

HOUR_MS = 3_600_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _watches(client: int, count: int, ts_ms: int, event: str = "watch") -> list[PlayerEvent]:
    return [PlayerEvent(client, ts_ms + n, event, "vod", "v-1", str(uuid.uuid4()), "AU", "")
            for n in range(count)]


def _key(event: PlayerEvent) -> str:
    """The event's key as the refill reads it from player_events."""
    return dedup_key(event.client_id, event.view_id, event.event).decode()


def _again(events: Sequence[PlayerEvent], ts_ms: int) -> list[PlayerEvent]:
    """The player's retries: same view, same event, a new request stamped at `ts_ms`."""
    return [PlayerEvent(e.client_id, ts_ms + n, e.event, e.type, e.video_id, e.view_id,
                        e.country, e.host) for n, e in enumerate(events)]


# --- the window's rules ----------------------------------------------------------------------

def test_a_stored_pair_is_a_duplicate_except_its_own_replay() -> None:
    window = RecentEvents()
    first = _watches(1, 2, 1_000)
    window.remember(first)
    retries = _again(first, 5_000)
    assert window.unseen(retries) == []
    assert window.unseen(retries, replay=True) == []  # a replay holds the first copy, not these
    assert window.unseen(first) == []
    # The recorded range read again: the rows its first attempt stored go in again, whole, so
    # the range's dedup token finds the same block.
    assert window.unseen([*first, *retries], replay=True) == first


def test_another_clients_event_of_the_same_view_is_not_a_duplicate() -> None:
    """Anyone can send a beacon with a tenant's view_id: it is the stranger's own event."""
    window = RecentEvents()
    tenant = _watches(17, 3, 1_000)
    stranger = [PlayerEvent(18, e.ts_ms + 1, e.event, e.type, e.video_id, e.view_id, "US", "")
                for e in tenant]
    window.remember(stranger)
    assert window.unseen(tenant) == tenant
    assert window.unseen([*tenant, *stranger, *tenant]) == tenant
    window.recall([(_key(e), e.ts_ms) for e in tenant])
    assert window.unseen(_again([*tenant, *stranger], 9_000)) == []


def test_a_refill_keeps_the_newest_time_and_never_evicts_what_the_writer_stores() -> None:
    window = RecentEvents(capacity=10)
    assert window.refill_size == 5
    stored = _watches(1, 3, 1_000)
    window.remember(stored[:1])
    window.recall([(_key(e), e.ts_ms) for e in stored])  # oldest first
    window.recall([(_key(stored[0]), 500)])  # an older copy changes nothing
    assert window.unseen([stored[0]], replay=True) == [stored[0]]
    more = _watches(1, 20, 9_000)
    window.recall([(_key(e), e.ts_ms) for e in more[:5]])
    assert window.unseen(stored[:1]) == []  # a refill of refill_size leaves the current pairs
    window.remember(more[5:])  # past the capacity, the oldest go
    assert window.unseen(more[:5]) == more[:5]
    assert 5 <= len(window) <= 10


def test_the_horizon_setting() -> None:
    assert Settings.from_env({}).dedup_horizon_s == 3600
    assert Settings.from_env({"DEDUP_HORIZON_S": "600"}).dedup_horizon_s == 600
    with pytest.raises(SettingsError, match=r"^DEDUP_HORIZON_S: "):
        Settings.from_env({"DEDUP_HORIZON_S": "1h"})


# --- the refill query --------------------------------------------------------------------------

@pytest.mark.chdb
def test_stored_pairs_are_the_newest_of_the_horizon(storage: Storage) -> None:
    now = _now_ms()
    client = fresh_client_id()
    old, recent = _watches(client, 3, now - 2 * HOUR_MS), _watches(client, 4, now - 60_000)
    insert_events(storage, [*old, *recent], {"insert_deduplicate": 0})
    mine = {_key(e) for e in [*old, *recent]}
    pairs = [p for p in stored_pairs(storage, now - HOUR_MS, 1_000_000) if p[0] in mine]
    assert pairs == [(_key(e), e.ts_ms) for e in recent]  # oldest first
    newest = stored_pairs(storage, now - HOUR_MS, 2)
    assert [ts for _, ts in newest] == sorted(ts for _, ts in newest)
    assert len(newest) == 2 and newest[-1][1] >= recent[-1].ts_ms


@pytest.mark.chdb
def test_stored_pairs_on_a_server_select_the_partitions_as_aiokafka_places_keys(
        tmp_path: Path) -> None:
    """The same query over clickhouse-connect (its own parameter binding and types), against
    the partitioner's own murmur2; the broker test below checks real placement."""
    now = _now_ms()
    events = _watches(1, 300, now)
    with clickhouse_url(tmp_path / "clickhouse", tmp_path / "endpoint.log") as url:
        server = ServerStorage(url)
        try:
            migrate(server)
            insert_events(server, events)
            everything = stored_pairs(server, now, 1000)
            owned = stored_pairs(server, now, 1000, PartitionFilter(3, frozenset({0, 2})))
        finally:
            server.close()
    assert everything == [(_key(e), e.ts_ms) for e in events]
    assert {key for key, _ in owned} == {
        _key(e) for e in events
        if (murmur2(e.view_id.encode()) & 0x7FFFFFFF) % 3 in (0, 2)}


@pytest.mark.chdb
def test_an_embedded_sink_that_starts_drops_the_retries_of_the_horizon(storage: Storage) -> None:
    client, now = fresh_client_id(), _now_ms()
    within, beyond = _watches(client, 50, now - HOUR_MS // 2), _watches(client, 30, now - HOUR_MS)
    insert_events(storage, [*within, *beyond], {"insert_deduplicate": 0})

    async def restarted() -> None:
        sink = EmbeddedSink(storage, linger_s=0.001, dedup_horizon_s=45 * 60)
        await sink.start()
        try:
            await sink.submit(_again([*within, *beyond], _now_ms()))
        finally:
            await sink.stop()

    asyncio.run(restarted())
    assert _stored_watches(storage, client) == 50 + 2 * 30  # beyond the horizon: once more
