"""Sealed buckets stay exact while writes, late events and reads interleave (architecture §13).

One query API (CountryTotals, kept for the whole example) answers windows while events keep
arriving, many of them late, into days and hours it already keeps; "now" moves on between steps
so the sealed boundary moves through the data. Every answer must equal a brute-force count of
what was written so far. It runs on the embedded engine (writes announced in-process) and in
server mode (another storage client writes; the API learns of it from write_records only).

The mutation check runs the same property with invalidation switched off and requires it to
fail: a test that passes whatever the buckets do would prove nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.support.api import watch
from tests.support.database import fresh_client_id, truncate_events
from tests.support.server_mode import clickhouse_url
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.query_api.country_totals import CountryTotals
from viewstats.query_api.sealed import SealedBuckets
from viewstats.query_api.window import Window
from viewstats.schema.migrations import migrate

pytestmark = pytest.mark.chdb

BASE_MS = 1_709_164_800_000  # 2024-02-29T00:00:00Z
HOUR_MS = 3_600_000
SPAN_MS = 3 * 24 * HOUR_MS
SEALED_AFTER_S = 300
HALF_HOUR_MS = HOUR_MS // 2
Row = tuple[int, int, str, str, str]  # client index, offset, country, event, type

# Near hour and day boundaries, where a window switches between days, hours and events.
near_marks = st.builds(lambda mark, delta: mark * HALF_HOUR_MS + delta,
                       st.integers(0, SPAN_MS // HALF_HOUR_MS), st.integers(-2, 2))
offsets = st.one_of(st.integers(0, SPAN_MS - 1), near_marks).map(
    lambda ms: min(max(ms, 0), SPAN_MS - 1))
event_rows = st.lists(st.tuples(st.integers(0, 1), offsets, st.sampled_from(["AU", "US", "ZZ"]),
                                st.sampled_from(["watch", "watch", "start"]),
                                st.sampled_from(["vod", "live"])), min_size=1, max_size=12)
write = st.tuples(st.just("write"), event_rows)
read = st.tuples(st.just("read"), st.tuples(st.integers(0, 1), offsets, offsets,
                                            st.sampled_from([None, "vod"])))
advance = st.tuples(st.just("advance"), st.integers(0, 30 * HOUR_MS))
steps = st.lists(st.one_of(write, read, read, advance), min_size=2, max_size=20)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerStorage,
                                                                      ServerStorage]]:
    """Two clients of one server: a writer, and the API's own (which sees no writes)."""
    tmp = tmp_path_factory.mktemp("sealed-server")
    with clickhouse_url(tmp / "clickhouse", tmp / "endpoint.log") as url:
        writer, reader = ServerStorage(url), ServerStorage(url)
        migrate(writer)
        yield writer, reader
        writer.close()
        reader.close()


@pytest.fixture(params=["embedded", "server"])
def pair(request: pytest.FixtureRequest, storage: Storage) -> tuple[Storage, Storage]:
    """(the storage writes go to, the storage the API reads through)."""
    if request.param == "embedded":
        return storage, storage
    writer, reader = request.getfixturevalue("server")
    return writer, reader


def check_interleaving(writer: Storage, reader: Storage, start_offset: int,
                       plan: list[tuple[str, object]]) -> None:
    truncate_events(writer)
    clients = [fresh_client_id(), fresh_client_id()]
    clock = Clock(BASE_MS + start_offset)
    totals = CountryTotals(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0,
                           background=False, clock=clock)
    written: list[PlayerEvent] = []
    for number, (kind, arg) in enumerate(plan):
        if kind == "write":
            rows = [watch(clients[c], BASE_MS + offset, country, len(written) + i,
                          event=event, type_=type_)
                    for i, (c, offset, country, event, type_) in enumerate(cast(list[Row], arg))]
            insert_events(writer, rows, {"insert_deduplicate": 0})
            written += rows
        elif kind == "advance":
            clock.now_ms += cast(int, arg)
        else:
            c, a, b, type_filter = cast(tuple[int, int, int, str | None], arg)
            lo, hi = BASE_MS + min(a, b), BASE_MS + max(a, b) + 1
            expected = Counter(e.country for e in written if e.client_id == clients[c]
                               and e.event == "watch" and lo <= e.ts_ms < hi
                               and type_filter in (None, e.type))
            got = dict(totals.rows(clients[c], type_filter, Window(lo, hi)))
            assert got == dict(expected), (number, clients[c], lo, hi, type_filter)
            kept = totals.rows_in_memory(clients[c], type_filter, Window(lo, hi))
            assert kept is None or dict(kept) == dict(expected), (number, "in memory")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start_offset=st.integers(0, SPAN_MS), plan=steps)
def test_answers_stay_exact_while_writes_interleave(
        pair: tuple[Storage, Storage], start_offset: int, plan: list[tuple[str, object]]) -> None:
    check_interleaving(*pair, start_offset, plan)


def test_the_property_fails_when_writes_do_not_drop_buckets(
        pair: tuple[Storage, Storage], monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: with invalidation off, kept buckets go stale and the property says so."""
    monkeypatch.setattr(SealedBuckets, "invalidate", lambda *_: None)
    monkeypatch.setattr(SealedBuckets, "invalidate_all", lambda *_: None)
    # No shrinking: the failure is what is asserted, and shrinking a 20-step plan replays it
    # hundreds of times.
    failing = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                       phases=[Phase.generate],
                       suppress_health_check=[HealthCheck.function_scoped_fixture])(
        given(start_offset=st.integers(0, SPAN_MS), plan=steps)(
            lambda start_offset, plan: check_interleaving(*pair, start_offset, plan)))
    with pytest.raises(AssertionError):
        failing()


def test_a_late_event_in_a_kept_day_is_counted(pair: tuple[Storage, Storage]) -> None:
    """The plain case the property generalises: read a past day, write into it, read again."""
    writer, reader = pair
    client = fresh_client_id()
    totals = CountryTotals(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0, background=False,
                           clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    day = Window(BASE_MS, BASE_MS + 24 * HOUR_MS)
    insert_events(writer, [watch(client, BASE_MS + HOUR_MS, "AU", 1)])
    assert totals.rows(client, None, day) == [("AU", 1)]
    assert totals.buckets.nbytes > 0  # the day is kept now
    # In server mode with a poll interval of 0 every use of the buckets reads write_records
    # first, which the I/O-free path never does: it defers to `rows`.
    in_memory = writer is reader
    assert totals.rows_in_memory(client, None, day) == ([("AU", 1)] if in_memory else None)
    insert_events(writer, [watch(client, BASE_MS + 2 * HOUR_MS, "AU", 2)])
    assert totals.rows(client, None, day) == [("AU", 2)]
    assert totals.rows_in_memory(client, None, day) == ([("AU", 2)] if in_memory else None)
    recent = Window(BASE_MS, BASE_MS + 10 * 24 * HOUR_MS)  # reaches past the sealed boundary
    assert totals.rows_in_memory(client, None, recent) is None


def test_memory_is_bounded_in_bytes(storage: Storage) -> None:
    clients = [fresh_client_id() for _ in range(6)]
    insert_events(storage, [watch(c, BASE_MS + i * HOUR_MS, "US", i)
                            for c in clients for i in range(48)])
    limit = 40_000
    totals = CountryTotals(storage, SEALED_AFTER_S, limit, background=False,
                           clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    for c in clients:
        assert totals.rows(c, None, Window(BASE_MS - 1, BASE_MS + 2 * 24 * HOUR_MS - 1)) \
            == [("US", 48)]
        assert 0 < totals.buckets.nbytes <= limit


def test_the_first_window_is_answered_by_the_engine_and_loaded_after(
        pair: tuple[Storage, Storage]) -> None:
    """By default a miss does not wait for a load: the engine answers, the filler loads, and
    the next window comes from memory, exact also after a later write into it."""
    writer, reader = pair
    client = fresh_client_id()
    totals = CountryTotals(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0,
                           clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    insert_events(writer, [watch(client, BASE_MS + HOUR_MS + 7, "AU", 1)])
    window = Window(BASE_MS + 5, BASE_MS + 3 * 24 * HOUR_MS + 5)
    assert totals.rows(client, None, window) == [("AU", 1)]
    deadline = time.monotonic() + 60
    while totals.buckets.nbytes == 0:
        assert time.monotonic() < deadline, "the buckets were never loaded"
        time.sleep(0.05)
    before = _hits()
    assert totals.rows(client, None, window) == [("AU", 1)]
    assert _hits() > before  # answered from memory
    insert_events(writer, [watch(client, BASE_MS + 2 * HOUR_MS, "US", 2)])
    assert dict(totals.rows(client, None, window)) == {"AU": 1, "US": 1}


def _hits() -> float:
    return REGISTRY.get_sample_value("viewstats_sealed_lookups_total", {"result": "hit"}) or 0
