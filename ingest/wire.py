"""The Kafka message of one player event: key = view_id, value = JSON of the stored fields.

The consumer trusts nothing it reads: `decode` checks every field, and its error names the
problem so the message can go to the dead-letter topic with that reason.
"""

from __future__ import annotations

import re

import orjson

from viewstats.core.events import EVENTS, MAX_CLIENT_ID, VIDEO_TYPES, PlayerEvent
from viewstats.core.settings import Settings

TOPIC = Settings.kafka_topic  # the default; VIEWSTATS_TOPIC names another
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_COUNTRY = re.compile(r"[A-Z]{2}")


class DecodeError(ValueError):
    """The message is not a player event; the message says why."""


def encode(event: PlayerEvent) -> bytes:
    return orjson.dumps({
        "client_id": event.client_id, "ts": event.ts_ms, "event": event.event,
        "type": event.type, "video_id": event.video_id, "view_id": event.view_id,
        "country": event.country, "host": event.host})


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
    if not 0 <= ts < 4_102_444_800_000:
        raise DecodeError("ts: out of range")
    if event not in EVENTS:
        raise DecodeError(f"event: unknown event {event[:32]!r}")
    if kind not in VIDEO_TYPES:
        raise DecodeError(f"type: unknown type {kind[:32]!r}")
    if not _UUID.fullmatch(view_id):
        raise DecodeError("view_id: not a lower-case UUID")
    if not _COUNTRY.fullmatch(country):
        raise DecodeError("country: not an ISO 3166-1 alpha-2 code")
    return PlayerEvent(client_id, ts, event, kind, video_id, view_id, country, host)
