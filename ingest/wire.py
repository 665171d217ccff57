"""The Kafka message of one player event: key = view_id, value = JSON of the stored fields.

The consumer trusts nothing it reads: `decode` checks every field, and its error names the
problem so the message can go to the dead-letter topic with that reason.
"""

from __future__ import annotations

import orjson

from viewstats.core.events import (
    COUNTRY,
    EVENTS,
    MAX_CLIENT_ID,
    MAX_HOST,
    MAX_TS_MS,
    MAX_VIDEO_ID,
    VIDEO_TYPES,
    VIEW_ID,
    PlayerEvent,
    as_row,
)


class DecodeError(ValueError):
    """The message is not a player event; the message says why."""


def encode(event: PlayerEvent) -> bytes:
    return orjson.dumps(as_row(event))


def _int(doc: dict[str, object], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int:
        raise DecodeError(f"{name}: expected an integer, got {type(value).__name__}")
    return value


def _str(doc: dict[str, object], name: str) -> str:
    value = doc.get(name)
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
    return PlayerEvent(client_id, ts, event, kind, video_id, view_id, country, host)
