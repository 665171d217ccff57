"""The one statement builder: which tables a window reads, its bound parameters, and the loads'
shapes (per quarter-hour and per event only from player_events, one row of arrays per key)."""

from __future__ import annotations

import pytest

from viewstats.query_api.breakdown import Breakdown, breakdown_query
from viewstats.query_api.plan import DAY_MS, HOUR_MS
from viewstats.query_api.window import Window

MAY_1 = 1_714_521_600_000


def _countries(start: int, end: int, event_type: str | None = None) -> Breakdown:
    return Breakdown(17, Window(start, end), ("country",), event_type=event_type, by_views=True)


def _tables(statement: str) -> list[str]:
    return [t for t in ("views_by_country_daily", "views_by_country_hourly", "player_events")
            if f"FROM {t}" in statement]


def test_a_day_aligned_window_is_one_read_of_the_daily_rollup() -> None:
    query = breakdown_query(_countries(MAY_1, MAY_1 + 31 * DAY_MS))
    assert query is not None
    statement, params = query
    assert _tables(statement) == ["views_by_country_daily"]
    assert "UNION" not in statement
    assert params == {"client_id": 17, "daily0_from": "2024-05-01", "daily0_to": "2024-06-01"}


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
    query = breakdown_query(_countries(start, end, "live"))
    assert query is not None
    statement, params = query
    assert _tables(statement) == tables
    assert params["type"] == "live" and statement.count("type = {type:String}") == len(tables)
    assert all("{" + name + ":" in statement for name in params)


def test_params_render_each_range_for_its_column_type() -> None:
    query = breakdown_query(_countries(MAY_1 - 1500, MAY_1 + DAY_MS + 1))
    assert query is not None
    _, params = query
    assert (params["daily0_from"], params["daily0_to"]) == ("2024-05-01", "2024-05-02")
    assert params["raw0_from"] == "2024-04-30 23:59:58.500"
    assert params["raw1_to"] == "2024-05-02 00:00:00.001"


def test_several_windows_are_one_statement() -> None:
    """A partial hit asks the engine for the pieces memory lacks, in one read."""
    windows = [Window(MAY_1 - 1, MAY_1 + HOUR_MS), Window(MAY_1 + 9 * DAY_MS, MAY_1 + 10 * DAY_MS)]
    query = breakdown_query(_countries(MAY_1, MAY_1 + 20 * DAY_MS), windows)
    assert query is not None
    statement, params = query
    assert _tables(statement) == ["views_by_country_daily", "views_by_country_hourly",
                                  "player_events"]
    assert params["daily0_from"] == "2024-05-10" and params["hourly0_from"] == \
        "2024-05-01 00:00:00" and params["raw0_from"] == "2024-04-30 23:59:59.999"


@pytest.mark.parametrize("bucket", ["quarter", "ms"])
def test_finer_than_an_hour_reads_the_events(bucket: str) -> None:
    query = Breakdown(17, Window(MAY_1, MAY_1 + 31 * DAY_MS), ("type", "country"),
                      bucket=bucket)  # type: ignore[arg-type]
    found = breakdown_query(query, arrays=True)
    assert found is not None
    statement, _ = found
    assert _tables(statement) == ["player_events"]
    assert statement.count("groupArray(") == 2  # one row per key: bucket starts and counts


def test_an_empty_window_reads_nothing() -> None:
    assert breakdown_query(_countries(MAY_1, MAY_1)) is None
