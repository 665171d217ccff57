from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewstats.query_api.plan import (
    DAY_MS,
    HOUR_MS,
    Plan,
    countries_query,
    plan_window,
    query_params,
)
from viewstats.query_api.window import Window

MAY_1 = 1_714_521_600_000


def _parts(plan: Plan) -> list[tuple[int, int]]:
    return [plan.head_raw, plan.head_hours, plan.days, plan.tail_hours, plan.tail_raw]


@given(st.integers(0, 4_000_000_000_000), st.integers(0, 800 * DAY_MS))
def test_parts_tile_the_window_on_their_grids(start: int, length: int) -> None:
    window = Window(start, start + length)
    plan = plan_window(window)
    parts = _parts(plan)
    non_empty = [p for p in parts if p[0] < p[1]]
    assert non_empty[0][0] == start and non_empty[-1][1] == start + length if non_empty else True
    for left, right in itertools.pairwise(non_empty):
        assert left[1] == right[0]
    for low, high in (plan.head_hours, plan.tail_hours):
        assert (low % HOUR_MS == 0 and high % HOUR_MS == 0) or low == high
    assert plan.days[0] == plan.days[1] or (plan.days[0] % DAY_MS == plan.days[1] % DAY_MS == 0)
    # Raw edges are shorter than an hour each: the expensive table is read as little as possible.
    assert plan.head_raw[1] - plan.head_raw[0] < HOUR_MS or plan.days == plan.head_hours == (
        plan.head_raw[1], plan.head_raw[1])


def test_a_month_is_days_plus_edges() -> None:
    plan = plan_window(Window(MAY_1 - 1500, MAY_1 + 31 * DAY_MS + 90 * 60_000))
    assert plan == Plan(head_raw=(MAY_1 - 1500, MAY_1), head_hours=(MAY_1, MAY_1),
                        days=(MAY_1, MAY_1 + 31 * DAY_MS),
                        tail_hours=(MAY_1 + 31 * DAY_MS, MAY_1 + 31 * DAY_MS + HOUR_MS),
                        tail_raw=(MAY_1 + 31 * DAY_MS + HOUR_MS, MAY_1 + 31 * DAY_MS + 90 * 60_000))


def test_params_render_each_range_for_its_column_type() -> None:
    params = query_params(plan_window(Window(MAY_1 - 1500, MAY_1 + DAY_MS + 1)), 17, None)
    assert params["client_id"] == 17 and params["type"] == ""
    assert (params["day_from"], params["day_to"]) == ("2024-05-01", "2024-05-02")
    assert params["head_raw_from"] == "2024-04-30 23:59:58.500"
    assert params["tail_raw_to"] == "2024-05-02 00:00:00.001"


def _tables(statement: str) -> list[str]:
    return [t for t in ("views_by_country_daily", "views_by_country_hourly", "player_events")
            if f"FROM {t}" in statement]


def test_a_day_aligned_window_is_one_read_of_the_daily_rollup() -> None:
    query = countries_query(plan_window(Window(MAY_1, MAY_1 + 31 * DAY_MS)), 17, None)
    assert query is not None
    statement, params = query
    assert _tables(statement) == ["views_by_country_daily"]
    assert "UNION" not in statement
    assert params == {"client_id": 17, "day_from": "2024-05-01", "day_to": "2024-06-01"}


@pytest.mark.parametrize(("start", "end", "tables"), [
    (MAY_1 + HOUR_MS, MAY_1 + 5 * HOUR_MS, ["views_by_country_hourly"]),
    (MAY_1 + 1, MAY_1 + 5, ["player_events"]),
    (MAY_1 - HOUR_MS, MAY_1 + DAY_MS, ["views_by_country_daily", "views_by_country_hourly"]),
    (MAY_1 - 1, MAY_1 + DAY_MS + 1,
     ["views_by_country_daily", "player_events"]),
    (MAY_1 - HOUR_MS - 1, MAY_1 + DAY_MS + HOUR_MS + 1,
     ["views_by_country_daily", "views_by_country_hourly", "player_events"]),
])
def test_only_the_parts_a_window_has_are_read(start: int, end: int, tables: list[str]) -> None:
    query = countries_query(plan_window(Window(start, end)), 17, "live")
    assert query is not None
    statement, params = query
    assert _tables(statement) == tables
    assert params["type"] == "live" and statement.count("type = {type:String}") == len(tables)
    assert all("{" + name + ":" in statement for name in params)


def test_an_empty_window_reads_nothing() -> None:
    assert countries_query(plan_window(Window(MAY_1, MAY_1)), 17, None) is None
