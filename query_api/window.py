"""Parse the `date_from`/`date_to` query parameters into an exact half-open UTC window.

Values are ISO 8601 date-times (`Z`, an offset or none for UTC) or plain dates. `date_to` is
inclusive to the end of its stated precision: `2024-05-31` covers that whole day and
`23:59:59` that whole second. Results are epoch milliseconds, the precision events are stored at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

# The range every storage column can hold (DateTime and Date end in 2106 and 2149).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_LENGTH = 40

# re.ASCII: a str pattern's \d also matches full-width and Arabic-Indic digits, and int()
# would read them, so a full-width 2024-05-01 would pass as a date no client means to send.
_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?)?", re.ASCII)
_NS_PER_MS = 1_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class WindowError(ValueError):
    """A parameter is invalid; the message names it, in the API's error shape."""


@dataclass(frozen=True)
class Instant:
    """A parsed value: its UTC instant in ns and the length of its stated precision in ns."""
    ns: int
    precision_ns: int


@dataclass(frozen=True)
class Window:
    start_ms: int  # inclusive
    end_ms: int  # exclusive


def _offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_instant(name: str, raw: str) -> Instant:
    if len(raw) > MAX_LENGTH:
        raise WindowError(f"{name}: value is too long for an ISO 8601 date-time")
    match = _ISO.fullmatch(raw)
    if match is None:
        raise WindowError(f"{name}: invalid ISO 8601 date-time, expected e.g. 2024-05-01T00:00:00Z")
    g = match.groupdict()
    frac = g["frac"] or ""
    if g["h"] is None:
        precision_ns = 86_400 * 10**9
    elif g["s"] is None:
        precision_ns = 60 * 10**9
    else:
        precision_ns = 10 ** (9 - len(frac))
    try:
        local = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"] or 0),
                         int(g["mi"] or 0), int(g["s"] or 0), tzinfo=_offset(g["tz"]))
        utc = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise WindowError(f"{name}: not a valid date or time") from None
    if not EARLIEST <= utc < LATEST:
        raise WindowError(f"{name}: must be between {EARLIEST:%Y-%m-%d} and "
                          f"{LATEST - timedelta(days=1):%Y-%m-%d}")
    seconds = (utc.toordinal() - _EPOCH_ORDINAL) * 86_400 + (
        utc.hour * 3600 + utc.minute * 60 + utc.second)
    return Instant(seconds * 10**9 + int(frac.ljust(9, "0") or 0), precision_ns)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def parse_window(date_from: str, date_to: str) -> Window:
    start = parse_instant("date_from", date_from)
    end = parse_instant("date_to", date_to)
    if start.ns > end.ns:
        raise WindowError("date_from: must not be after date_to")
    # An event at ms t is inside iff start <= t and t < end + precision; both bounds are
    # rounded up to whole ms, which keeps that comparison exact for sub-ms precisions.
    return Window(_ceil_div(start.ns, _NS_PER_MS),
                  _ceil_div(end.ns + end.precision_ns, _NS_PER_MS))
