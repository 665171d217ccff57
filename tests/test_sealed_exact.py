"""Sealed buckets stay exact while writes, late events and reads interleave (architecture §13).

One query API (KeptAnswers, kept for the whole example) answers windows of every endpoint's
breakdown while events keep arriving, many of them late, into days and quarter-hours it already
keeps; "now" moves on between steps so the sealed boundary moves through the data. Every answer
must equal a brute-force count of what was written so far. It runs on the embedded engine
(writes announced in-process) and in server mode (another storage client writes; the API
learns of it from write_records only).

The mutation check runs the same property with invalidation switched off and requires it to
fail: a test that passes whatever the buckets do would prove nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.support.api import watch
from tests.support.database import fresh_client_id, truncate_events
from tests.support.server_mode import clickhouse_url
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.query_api.breakdown import Breakdown
from viewstats.query_api.kept_answers import KeptAnswers
from viewstats.query_api.plan import sql_date
from viewstats.query_api.sealed import SealedBuckets
from viewstats.query_api.window import Window
from viewstats.schema.migrations import migrate

pytestmark = pytest.mark.chdb

BASE_MS = 1_709_164_800_000  # 2024-02-29T00:00:00Z
HOUR_MS = 3_600_000
SPAN_MS = 3 * 24 * HOUR_MS
SEALED_AFTER_S = 300
QUARTER_MS = HOUR_MS // 4
# client index, offset, country, event, type, video, host
Row = tuple[int, int, str, str, str, str, str]

# Near quarter-hour and day boundaries, where a window switches between days, quarter-hours and
# events.
near_marks = st.builds(lambda mark, delta: mark * QUARTER_MS + delta,
                       st.integers(0, SPAN_MS // QUARTER_MS), st.integers(-2, 2))
offsets = st.one_of(st.integers(0, SPAN_MS - 1), near_marks).map(
    lambda ms: min(max(ms, 0), SPAN_MS - 1))
event_rows = st.lists(st.tuples(st.integers(0, 1), offsets, st.sampled_from(["AU", "US", "ZZ"]),
                                st.sampled_from(["watch", "watch", "start"]),
                                st.sampled_from(["vod", "live"]), st.sampled_from(["v1", "v2"]),
                                st.sampled_from(["a.example", "b.example"])),
                      min_size=1, max_size=12)
write = st.tuples(st.just("write"), event_rows)
# Every endpoint's breakdown (countries, its filters and `event`, views by day and its groups,
# hosts, popular) as (keys, bucket, by_views, event, filters, limit).
Shape = tuple[tuple[str, ...], str | None, bool, str | None, dict[str, str], int | None]
SHAPES: list[Shape] = [
    (("country",), None, True, None, {}, None),
    (("country",), None, True, "start", {}, None),
    (("country",), None, True, None, {"id": "v1"}, None),
    (("country",), None, True, None, {"host": "a.example"}, None),
    (("host",), None, True, None, {"country": "AU"}, None),
    (("type",), "day", False, None, {}, None),
    (("type", "country"), "day", False, None, {"country": "AU"}, None),
    (("type", "event", "country"), "day", False, None, {}, None),
    (("type", "id"), "day", False, "watch", {}, None),
    (("host",), None, True, None, {}, None),
    (("id",), None, True, None, {}, 1),
]
read = st.tuples(st.just("read"), st.tuples(st.integers(0, 1), offsets, offsets,
                                            st.sampled_from([None, "vod"]),
                                            st.sampled_from(SHAPES)))
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


def expected(events: list[PlayerEvent], query: Breakdown) -> list[tuple[str | int, ...]]:
    """The breakdown's rows counted from the events themselves."""
    fields = {"type": "type", "event": "event", "country": "country", "id": "video_id",
              "host": "host"}
    counted = Counter(
        ((sql_date(e.ts_ms),) if query.bucket == "day" else ())
        + tuple(getattr(e, fields[k]) for k in query.keys)
        for e in events
        if e.client_id == query.client_id
        and query.window.start_ms <= e.ts_ms < query.window.end_ms
        and query.event_type in (None, e.type)
        and (e.event == query.event if query.event is not None
             else "event" in query.keys or e.event == "watch")
        and all(getattr(e, fields[name]) == value for name, value in query.filters.items()))
    rows = [(*key, count) for key, count in counted.items()]
    rows.sort(key=(lambda r: (-int(r[-1]), r[:-1])) if query.by_views else (lambda r: r[:-1]))
    return rows[:query.limit] if query.limit is not None else rows


def check_interleaving(writer: Storage, reader: Storage, start_offset: int,
                       plan: list[tuple[str, object]]) -> None:
    truncate_events(writer)
    clients = [fresh_client_id(), fresh_client_id()]
    clock = Clock(BASE_MS + start_offset)
    kept = KeptAnswers(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0,
                       background=False, clock=clock)
    written: list[PlayerEvent] = []
    for number, (kind, arg) in enumerate(plan):
        if kind == "write":
            rows = [PlayerEvent(clients[c], BASE_MS + offset, event, type_, video,
                                f"00000000-0000-4000-8000-{len(written) + i:012x}", country,
                                host)
                    for i, (c, offset, country, event, type_, video, host)
                    in enumerate(cast(list[Row], arg))]
            insert_events(writer, rows, {"insert_deduplicate": 0})
            written += rows
        elif kind == "advance":
            clock.now_ms += cast(int, arg)
        else:
            c, a, b, type_filter, shape = cast(tuple[int, int, int, str | None, Shape], arg)
            keys, bucket, by_views, event, filters, limit = shape
            query = Breakdown(clients[c], Window(BASE_MS + min(a, b), BASE_MS + max(a, b) + 1),
                              keys, cast(Any, bucket), type_filter, event, filters, by_views,
                              limit)
            want = expected(written, query)
            assert kept.rows(query) == want, (number, query)
            in_memory = kept.rows_in_memory(query)
            assert in_memory is None or in_memory == want, (number, "in memory")


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
    # The plain case first (read a sealed span, write into it, read it again), so that the
    # check does not rest on which plans the generator happens to draw.
    late_write: list[tuple[str, object]] = [
        ("read", (0, 0, SPAN_MS - 1, None, SHAPES[0])),
        ("write", [(0, HOUR_MS, "AU", "watch", "vod", "v1", "a.example")]),
        ("read", (0, 0, SPAN_MS - 1, None, SHAPES[0]))]
    failing = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                       phases=[Phase.explicit, Phase.generate],
                       suppress_health_check=[HealthCheck.function_scoped_fixture])(
        given(start_offset=st.integers(0, SPAN_MS), plan=steps)(
            example(start_offset=SPAN_MS, plan=late_write)(
                lambda start_offset, plan: check_interleaving(*pair, start_offset, plan))))
    with pytest.raises(AssertionError):
        failing()


def _countries(client: int, window: Window) -> Breakdown:
    return Breakdown(client, window, ("country",), by_views=True)


def test_a_late_event_in_a_kept_day_is_counted(pair: tuple[Storage, Storage]) -> None:
    """The plain case the property generalises: read a past day, write into it, read again."""
    writer, reader = pair
    client = fresh_client_id()
    kept = KeptAnswers(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0, background=False,
                       clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    day = _countries(client, Window(BASE_MS, BASE_MS + 24 * HOUR_MS))
    insert_events(writer, [watch(client, BASE_MS + HOUR_MS, "AU", 1)])
    assert kept.rows(day) == [("AU", 1)]
    assert kept.buckets.nbytes > 0  # the day is kept now
    # In server mode with a poll interval of 0 every use of the buckets reads write_records
    # first, which the I/O-free path never does: it defers to `rows`.
    in_memory = writer is reader
    assert kept.rows_in_memory(day) == ([("AU", 1)] if in_memory else None)
    insert_events(writer, [watch(client, BASE_MS + 2 * HOUR_MS, "AU", 2)])
    assert kept.rows(day) == [("AU", 2)]
    assert kept.rows_in_memory(day) == ([("AU", 2)] if in_memory else None)
    # reaches past the sealed boundary
    recent = _countries(client, Window(BASE_MS, BASE_MS + 10 * 24 * HOUR_MS))
    assert kept.rows_in_memory(recent) is None


def test_memory_is_bounded_in_bytes(storage: Storage) -> None:
    clients = [fresh_client_id() for _ in range(6)]
    insert_events(storage, [watch(c, BASE_MS + i * HOUR_MS, "US", i)
                            for c in clients for i in range(48)])
    limit = 40_000
    kept = KeptAnswers(storage, SEALED_AFTER_S, limit, background=False,
                       clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    for c in clients:
        window = Window(BASE_MS - 1, BASE_MS + 2 * 24 * HOUR_MS - 1)
        assert kept.rows(_countries(c, window)) == [("US", 48)]
        assert 0 < kept.buckets.nbytes <= limit


def test_the_first_window_is_answered_by_the_engine_and_loaded_after(
        pair: tuple[Storage, Storage]) -> None:
    """By default a miss does not wait for a load: the engine answers, the filler loads the
    client's days and then the quarter-hours of every day it has data on, and a later window
    with other quarter-hour edges comes from memory, exact also after a later write into it."""
    writer, reader = pair
    client = fresh_client_id()
    kept = KeptAnswers(reader, SEALED_AFTER_S, 1 << 20, poll_interval_s=0,
                       clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    insert_events(writer, [watch(client, BASE_MS + HOUR_MS + 7, "AU", 1)])
    window = Window(BASE_MS, BASE_MS + 3 * 24 * HOUR_MS)
    assert kept.rows(_countries(client, window)) == [("AU", 1)]
    other = _countries(client, Window(BASE_MS + 3 * QUARTER_MS, BASE_MS + 30 * QUARTER_MS))
    deadline = time.monotonic() + 60
    while not kept.buckets.holds(("q", client, "views_by_country", BASE_MS)):
        assert time.monotonic() < deadline, "the buckets were never loaded"
        time.sleep(0.05)
    before = _hits()
    assert kept.rows(other) == [("AU", 1)]
    assert _hits() > before  # answered from memory
    insert_events(writer, [watch(client, BASE_MS + 2 * HOUR_MS, "US", 2)])
    assert kept.rows(other) == [("AU", 1), ("US", 1)]


def _hits() -> float:
    return REGISTRY.get_sample_value("viewstats_sealed_lookups_total", {"result": "hit"}) or 0


def test_a_quarter_hours_events_are_loaded_on_their_second_miss(storage: Storage) -> None:
    """Edges finer than a quarter-hour: the first miss loads nothing (random minute edges
    rarely come back), the second loads the quarter-hour's events, and then memory answers."""
    client = fresh_client_id()
    insert_events(storage, [watch(client, BASE_MS + HOUR_MS + 7, "AU", 1)])
    kept = KeptAnswers(storage, SEALED_AFTER_S, 1 << 20,
                       clock=Clock(BASE_MS + 10 * 24 * HOUR_MS))
    edge = ("e", client, "views_by_country", BASE_MS + HOUR_MS)
    query = _countries(client, Window(BASE_MS + HOUR_MS + 5, BASE_MS + 2 * HOUR_MS))

    def loaded() -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if kept.buckets.holds(edge):
                return True
            time.sleep(0.05)
        return False

    assert kept.rows(query) == [("AU", 1)]
    assert not loaded()
    assert kept.rows(query) == [("AU", 1)]
    assert loaded()
    assert kept.rows_in_memory(query) == [("AU", 1)]
