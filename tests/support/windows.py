"""Random events and windows for the statistics endpoints' property tests (architecture §6):
events cluster near the marks where a query switches tables, and window bounds come in every
precision and several time zones, often a µs or ms from an event, so edges are hit exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import assume
from hypothesis import strategies as st

BASE = datetime(2024, 2, 27, tzinfo=UTC)  # spans the leap day and a month boundary
BASE_MS = int(BASE.timestamp() * 1000)
HOUR_MS = 3_600_000
SPAN_MS = 4 * 24 * HOUR_MS
ZONES = {"Z": UTC, "+05:30": timezone(timedelta(hours=5, minutes=30)),
         "-03:00": timezone(timedelta(hours=-3)), "": UTC, "+0100": timezone(timedelta(hours=1))}
PRECISIONS = {"day": timedelta(days=1), "minute": timedelta(minutes=1),
              "second": timedelta(seconds=1), "ms": timedelta(milliseconds=1),
              "us": timedelta(microseconds=1)}

HALF_HOUR_MS = HOUR_MS // 2

# Events cluster within a few ms of half-hour marks (UTC hour and day boundaries, and +05:30
# local hours), where the plan switches between tables.
near_marks = st.builds(lambda mark, delta: mark * HALF_HOUR_MS + delta,
                       st.integers(0, SPAN_MS // HALF_HOUR_MS), st.integers(-3, 3))
offsets = st.one_of(st.integers(0, SPAN_MS - 1), near_marks).map(
    lambda ms: min(max(ms, 0), SPAN_MS - 1))
# (client index, ms offset from BASE, country, event, type)
event_fields = st.tuples(st.integers(0, 2), offsets, st.sampled_from(["AU", "US", "DE", "ZZ"]),
                         st.sampled_from(["watch", "watch", "watch", "init", "start"]),
                         st.sampled_from(["vod", "live", "playlist"]))
events = st.lists(event_fields, max_size=120)


@dataclass(frozen=True)
class Bound:
    text: str
    start: datetime  # the instant the text names
    unit: timedelta  # its stated precision


def bounds(event_offsets: list[int]) -> st.SearchStrategy[Bound]:
    """Window bounds anywhere, or a few µs or ms from an event, so edges are hit exactly."""
    around_events = [st.builds(lambda ms, us: ms * 1000 + us, st.sampled_from(event_offsets),
                               st.sampled_from([-1000, -1000, -1, 0, 0, 1, 999, 1000]))
                     ] if event_offsets else []
    micros = st.one_of(st.integers(-6 * HOUR_MS * 1000, (SPAN_MS + 6 * HOUR_MS) * 1000),
                       *around_events)
    precisions = st.sampled_from(["day", "minute", "second", "ms", "ms", "us", "us"])
    return st.builds(_bound, micros, precisions,
                     st.sampled_from(sorted(ZONES)))


def _bound(micros: int, precision: str, zone: str) -> Bound:
    instant = BASE + timedelta(microseconds=micros)
    if precision == "day":
        day = datetime(instant.year, instant.month, instant.day, tzinfo=UTC)
        return Bound(f"{day:%Y-%m-%d}", day, PRECISIONS["day"])
    local = instant.astimezone(ZONES[zone])
    cut = {"minute": local.replace(second=0, microsecond=0),
           "second": local.replace(microsecond=0),
           "ms": local.replace(microsecond=local.microsecond // 1000 * 1000),
           "us": local}[precision]
    text = cut.strftime({"minute": "%Y-%m-%dT%H:%M", "second": "%Y-%m-%dT%H:%M:%S",
                         "ms": "%Y-%m-%dT%H:%M:%S.%f", "us": "%Y-%m-%dT%H:%M:%S.%f"}[precision])
    if precision == "ms":
        text = text[:-3]
    return Bound(text + zone, cut, PRECISIONS[precision])


@dataclass(frozen=True)
class DrawnWindow:
    params: dict[str, str]  # date_from and date_to as sent
    start_ms: float  # an event at ms t is inside iff start_ms <= t < end_ms
    end_ms: float


def draw_window(data: st.DataObject, event_offsets: list[int]) -> DrawnWindow:
    """A window with date_from <= date_to (others are rejected by hypothesis's assume)."""
    edges = bounds(event_offsets)
    date_from, date_to = data.draw(edges, "date_from"), data.draw(edges, "date_to")
    assume(date_from.start <= date_to.start)
    return DrawnWindow({"date_from": date_from.text, "date_to": date_to.text},
                       date_from.start.timestamp() * 1000,
                       (date_to.start + date_to.unit).timestamp() * 1000)
