"""The event record (viewstats.core.events) and the SQL schema describe the same thing."""

from __future__ import annotations

import dataclasses

import pytest

from viewstats.core.events import (
    COLUMNS,
    EVENTS,
    PLATFORMS,
    TABLE,
    VIDEO_TYPES,
    PlayerEvent,
    as_row,
)
from viewstats.core.storage import Storage


def _enum8(values: tuple[str, ...]) -> str:
    return "Enum8(" + ", ".join(f"'{v}' = {n}" for n, v in enumerate(values, 1)) + ")"


def _column_types(storage: Storage, table: str) -> dict[str, str]:
    rows = storage.query("SELECT name, type FROM system.columns WHERE database = "
                         "currentDatabase() AND table = {t:String}", {"t": table})
    return {str(name): str(kind) for name, kind in rows}


@pytest.mark.chdb
def test_the_tables_enums_are_the_records_enums(storage: Storage) -> None:
    events = _column_types(storage, TABLE)
    assert events["event"] == _enum8(EVENTS)
    assert events["type"] == _enum8(VIDEO_TYPES)
    assert events["platform"] == _enum8(PLATFORMS)
    for rollup in ("views_by_country_hourly", "views_by_country_daily"):
        assert _column_types(storage, rollup)["type"] == _enum8(VIDEO_TYPES), rollup


@pytest.mark.chdb
def test_every_field_of_the_record_has_its_column(storage: Storage) -> None:
    columns = _column_types(storage, TABLE)
    assert set(COLUMNS) == set(columns)
    assert sorted(COLUMNS.values()) == sorted(f.name for f in dataclasses.fields(PlayerEvent))


def test_a_row_holds_every_field_under_its_column_name() -> None:
    event = PlayerEvent(17, 1_700_000_000_000, "watch", "vod", "v-1",
                        "00000000-0000-4000-8000-000000000001", "AU", "example.com")
    row = as_row(event)
    assert row == {column: getattr(event, field) for column, field in COLUMNS.items()}
    assert row["ts"] == 1_700_000_000_000
