from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from viewstats.query_api.plan import DAY_MS, HOUR_MS, Plan, plan_window
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
