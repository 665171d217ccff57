from __future__ import annotations

import pytest

from viewstats.query_api.window import Window, WindowError, parse_window

MAY_1 = 1_714_521_600_000


@pytest.mark.parametrize(("date_from", "date_to", "expected"), [
    ("2024-05-01T00:00:00Z", "2024-05-31T23:59:59Z", Window(MAY_1, MAY_1 + 31 * 86_400_000)),
    ("2024-05-01", "2024-05-01", Window(MAY_1, MAY_1 + 86_400_000)),
    ("2024-05-01T00:00:00", "2024-05-01T00:00:00", Window(MAY_1, MAY_1 + 1000)),
    ("2024-05-01 00:00:00z", "2024-05-01T00:00Z", Window(MAY_1, MAY_1 + 60_000)),
    ("2024-05-01T05:30:00+05:30", "2024-05-01T05:30:00.5+05:30", Window(MAY_1, MAY_1 + 600)),
    ("2024-04-30T21:00:00-03:00", "2024-04-30T21:00:00.000-0300", Window(MAY_1, MAY_1 + 1)),
    ("2024-05-01T00:00:00.0001Z", "2024-05-01T00:00:00.000999999Z", Window(MAY_1 + 1, MAY_1 + 1)),
    ("2024-05-01T00:00:00,25Z", "2024-05-01T00:00:00.25Z", Window(MAY_1 + 250, MAY_1 + 260)),
])
def test_inclusive_end_at_stated_precision(date_from: str, date_to: str,
                                           expected: Window) -> None:
    assert parse_window(date_from, date_to) == expected


@pytest.mark.parametrize(("date_from", "date_to", "message"), [
    ("2024-02-30", "2024-03-01", "date_from: not a valid date or time"),
    ("2024-05-01", "2024-13-01", "date_to: not a valid date or time"),
    ("2024-05-01T24:00:00Z", "2024-06-01", "date_from: not a valid date or time"),
    ("2024-05-01T23:59:60Z", "2024-06-01", "date_from: not a valid date or time"),
    ("2024-05-01T00:00:00+24:00", "2024-06-01", "date_from: not a valid date or time"),
    ("0001-01-01", "2024-06-01", "date_from: must be between 1970-01-01 and 2099-12-31"),
    ("2024-05-01", "9999-12-31T23:59:59Z", "date_to: must be between"),
    ("1969-12-31T23:59:59Z", "2024-06-01", "date_from: must be between"),
    ("2024-06-01", "2024-05-01", "date_from: must not be after date_to"),
    ("2024-05-01T00:00:00.001Z", "2024-05-01T00:00:00Z", "date_from: must not be after date_to"),
    ("yesterday", "2024-06-01", "date_from: invalid ISO 8601 date-time"),
    ("2024-5-1", "2024-06-01", "date_from: invalid ISO 8601 date-time"),
    ("2024-05-01T00:00:00Z ", "2024-06-01", "date_from: invalid ISO 8601 date-time"),
    ("1714521600", "2024-06-01", "date_from: invalid ISO 8601 date-time"),
    ("2024-05-01T00:00:00.0000000001Z", "2024-06-01", "date_from: invalid ISO 8601 date-time"),
    ("2" * 10_000, "2024-06-01", "date_from: value is too long"),
])
def test_bad_values_name_the_parameter(date_from: str, date_to: str, message: str) -> None:
    with pytest.raises(WindowError, match="^" + message.replace("(", r"\(")):
        parse_window(date_from, date_to)


@pytest.mark.parametrize("value", [
    "\uff12\uff10\uff12\uff14-05-01",  # full-width 2024
    "\u0662\u0660\u0662\u0664-\u0660\u0665-\u0660\u0661",  # Arabic-Indic 2024-05-01
    "\u06f2\u06f0\u06f2\u06f4-05-01",  # Extended Arabic-Indic (Persian) 2024
    "\u0968\u0966\u0968\u096a-05-01",  # Devanagari 2024
    "2024-05-0\uff11",
    "2024-05-01T\u0661\u0662:00:00Z",
    "2024-05-01T12:00:00.\u0665Z",
    "2024-05-01T12:00:00+\u0660\u0665:30",
])
def test_only_ascii_digits_are_digits(value: str) -> None:
    for date_from, date_to, name in ((value, "2024-06-01", "date_from"),
                                     ("2024-04-01", value, "date_to")):
        with pytest.raises(WindowError, match=f"^{name}: invalid ISO 8601 date-time"):
            parse_window(date_from, date_to)


def test_one_ms_window_at_the_end_of_the_supported_range() -> None:
    window = parse_window("2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59.999Z")
    assert window.end_ms - window.start_ms == 1
