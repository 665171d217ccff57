"""The Kafka message of one player event: key = view_id, value = JSON of the stored fields.

The consumer trusts nothing it reads: `decode` checks every field of one message, and its error
names the problem so the message can go to the dead-letter topic with that reason.

`decode_many` is the consumer's hot path (architecture §5). It checks a whole poll's messages
with one regular expression over their joined text, which matches only the exact text the
collector writes (`encode`) with every field within the limits `decode` checks, and keeps the
messages as JSON lines for ClickHouse's own parser instead of building Python objects per event.
Only what the writer needs of each event is taken out (its dedup key and time, its client). A
poll with anything else in it (a poison message, another producer's spelling) is checked
message by message, the unusual ones by `decode`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter

import orjson

from viewstats.core.events import (
    COLUMNS,
    COUNTRY,
    EVENTS,
    MAX_CLIENT_ID,
    MAX_DEVICE_NAME,
    MAX_HOST,
    MAX_PAGE_URL,
    MAX_TS_MS,
    MAX_VIDEO_ID,
    MAX_VIEWER,
    PLATFORMS,
    REGION,
    UNKNOWN,
    VIDEO_TYPES,
    VIEW_ID,
    PlayerEvent,
)


class DecodeError(ValueError):
    """The message is not a player event; the message says why."""


_NAMES, _VALUES = tuple(COLUMNS), attrgetter(*COLUMNS.values())


def encode(event: PlayerEvent) -> bytes:
    """`as_row` as JSON, built without it: this runs for every event the collector takes, and
    one attrgetter for all the fields costs well under half of a getter per field (measured)."""
    return orjson.dumps(dict(zip(_NAMES, _VALUES(event), strict=True)))


def _int(doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int:
        raise DecodeError(f"{name}: expected an integer, got {type(value).__name__}")
    return value


def _str(doc: dict[str, object], name: str, default: str | None = None) -> str:
    value = doc.get(name, default)
    if not isinstance(value, str):
        raise DecodeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def decode(value: bytes | None) -> PlayerEvent:
    if value is None:
        raise DecodeError("empty message")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("not a JSON object")
    client_id, ts = _int(doc, "client_id"), _int(doc, "ts")
    event, kind = _str(doc, "event"), _str(doc, "type")
    video_id, view_id = _str(doc, "video_id"), _str(doc, "view_id")
    country, host = _str(doc, "country"), _str(doc, "host")
    # A message from a collector older than the audience fields has none of them: it reads as
    # a row stored before they were collected (the defaults of PlayerEvent and schema/0011).
    browser, os = _str(doc, "browser", UNKNOWN), _str(doc, "os", UNKNOWN)
    platform, region = _str(doc, "platform", UNKNOWN), _str(doc, "region", "")
    embed_url, viewer = _str(doc, "embed_url", ""), doc.get("viewer", 0)
    if type(viewer) is not int or not 0 <= viewer <= MAX_VIEWER:
        raise DecodeError("viewer: expected an integer from 0 to 2**64-1")
    if not 0 <= client_id <= MAX_CLIENT_ID:
        raise DecodeError("client_id: out of range")
    if not 0 <= ts < MAX_TS_MS:
        raise DecodeError("ts: out of range")
    if event not in EVENTS:
        raise DecodeError(f"event: unknown event {event[:32]!r}")
    if kind not in VIDEO_TYPES:
        raise DecodeError(f"type: unknown type {kind[:32]!r}")
    if not 0 < len(video_id) <= MAX_VIDEO_ID:
        raise DecodeError("video_id: empty or too long")
    if not VIEW_ID.fullmatch(view_id) or view_id != view_id.lower():
        raise DecodeError("view_id: not a lower-case UUID")
    if not COUNTRY.fullmatch(country):
        raise DecodeError("country: not an ISO 3166-1 alpha-2 code")
    if len(host) > MAX_HOST:
        raise DecodeError("host: too long")
    if not (0 < len(browser) <= MAX_DEVICE_NAME and 0 < len(os) <= MAX_DEVICE_NAME):
        raise DecodeError("browser, os: empty or too long")
    if platform not in PLATFORMS:
        raise DecodeError(f"platform: unknown platform {platform[:32]!r}")
    if not REGION.fullmatch(region):
        raise DecodeError("region: not an ISO 3166-2 code")
    if len(embed_url) > MAX_PAGE_URL:
        raise DecodeError("embed_url: too long")
    return PlayerEvent(client_id, ts, event, kind, video_id, view_id, country, host, browser,
                       os, platform, region, embed_url, viewer)


def dedup_key(client_id: int, view_id: str, event: str) -> bytes:
    """The dedup window's key of one client's event of a view (ingest/dedup.py): the view id,
    the event and the client's decimal digits, nothing between them. A view id has 36
    characters and no event name has a digit, so two different triples never share a key, and
    the key is no longer than it must be: the window holds an hour of them. The refill builds
    the same text in SQL (dedup.stored_pairs) and decode_many from the message's own digits."""
    return f"{view_id}{event}{client_id}".encode()


@dataclass(slots=True)
class Rows:
    """Checked events as ClickHouse will parse them, and what the writer needs of each."""

    lines: list[bytes] = field(default_factory=list)  # one event's JSON object each
    keys: list[bytes] = field(default_factory=list)  # dedup_key of each
    ts_ms: list[int] = field(default_factory=list)
    client_ids: set[int] = field(default_factory=set)  # of these rows, or of more (see select)

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def of(cls, events: Sequence[PlayerEvent]) -> Rows:
        return cls([encode(e) for e in events],
                   [dedup_key(e.client_id, e.view_id, e.event) for e in events],
                   [e.ts_ms for e in events], {e.client_id for e in events})

    def extend(self, more: Rows) -> None:
        self.lines += more.lines
        self.keys += more.keys
        self.ts_ms += more.ts_ms
        self.client_ids |= more.client_ids

    def select(self, indexes: Sequence[int]) -> Rows:
        """These rows only. Their clients are not worked out again: the set stays a superset,
        which only makes a cache drop a little more than the write changed."""
        return Rows([self.lines[i] for i in indexes], [self.keys[i] for i in indexes],
                    [self.ts_ms[i] for i in indexes], set(self.client_ids))


def _at_most(limit: int) -> bytes:
    """A pattern of the decimal integers 0..limit as JSON writes them (no leading zeros)."""
    digits = str(limit)
    options = []  # the longest first: a time has all its digits, so the first option matches
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            below = f"[{low}-{int(digit) - 1}]" if int(digit) - 1 > low else str(low)
            rest = len(digits) - i - 1
            options.append(digits[:i] + below + (rf"\d{{{rest}}}" if rest else ""))
    options.append(digits)
    if len(digits) > 1:
        options.append(rf"[1-9]\d{{0,{len(digits) - 2}}}")
    options.append("0")
    return ("(?:" + "|".join(options) + ")").encode()


# Printable ASCII but `"` and `\`: such a string is its own JSON text and valid UTF-8, so its
# length in characters is its length in bytes.
_PLAIN = rb"[ !#-\[\]-~]"
_FIELDS = {
    "client_id": b"(" + _at_most(MAX_CLIENT_ID) + b")",
    "ts": b"(" + _at_most(MAX_TS_MS - 1) + b")",
    "event": b'"(' + b"|".join(e.encode() for e in EVENTS) + b')"',
    "type": b'"(?:' + b"|".join(t.encode() for t in VIDEO_TYPES) + b')"',
    "video_id": b'"' + _PLAIN + b"{1,%d}" % MAX_VIDEO_ID + b'"',
    "view_id": rb'"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"',
    "country": b'"' + COUNTRY.pattern.encode() + b'"',
    "host": b'"' + _PLAIN + b"{0,%d}" % MAX_HOST + b'"',
    "browser": b'"' + _PLAIN + b"{1,%d}" % MAX_DEVICE_NAME + b'"',
    "os": b'"' + _PLAIN + b"{1,%d}" % MAX_DEVICE_NAME + b'"',
    "platform": b'"(?:' + b"|".join(p.encode() for p in PLATFORMS) + b')"',
    "region": b'"' + REGION.pattern.encode() + b'"',
    "embed_url": b'"' + _PLAIN + b"{0,%d}" % MAX_PAGE_URL + b'"',
    "viewer": _at_most(MAX_VIEWER),
}
# One message as `encode` writes it, fields in the record's order; the groups are the client,
# the time, the event and the view. MULTILINE: in the joined text, one match per line at most.
_LINE = re.compile(rb"^\{" + b",".join(b'"%s":%s' % (name.encode(), _FIELDS[name])
                                       for name in COLUMNS) + rb"\}$", re.MULTILINE)
_CLIENT, _TS, _EVENT, _VIEW = (itemgetter(i) for i in range(4))
_KEY_PARTS = itemgetter(3, 2, 0)  # view, event, client: dedup_key's text, joined
Rejection = tuple[int, str]  # the message's index among those decoded, and why


def decode_many(values: Sequence[bytes | None]) -> tuple[Rows, list[Rejection]]:
    """The events of these messages, in order, and which messages are not events."""
    if None not in values:
        text = b"\n".join(values)  # type: ignore[arg-type]
        # No message holds a line break, so each line is one message, and each matched line is
        # one message matched whole.
        if text.count(b"\n") == len(values) - 1:
            found = _LINE.findall(text)
            if len(found) == len(values):
                return _rows(list(values), found), []  # type: ignore[arg-type]
    return _one_by_one(values)


def _rows(lines: list[bytes], found: list[tuple[bytes, bytes, bytes, bytes]]) -> Rows:
    return Rows(lines, list(map(b"".join, map(_KEY_PARTS, found))),
                list(map(int, map(_TS, found))), set(map(int, set(map(_CLIENT, found)))))


def _one_by_one(values: Sequence[bytes | None]) -> tuple[Rows, list[Rejection]]:
    rows, rejected = Rows(), []
    for index, value in enumerate(values):
        match = _LINE.fullmatch(value) if value is not None else None
        if match is not None:
            rows.extend(_rows([value], [match.groups()]))  # type: ignore[list-item]
            continue
        try:
            event = decode(value)
        except DecodeError as exc:
            rejected.append((index, str(exc)))
            continue
        # Valid, only not spelled as the collector spells it: ClickHouse gets the canonical text.
        rows.extend(Rows.of([event]))
    return rows, rejected
