"""A validated player event as the writers store it, and its columnar form for `player_events`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from viewstats.core.storage import QuerySettings, Storage

EVENTS = ("init", "start", "watch")
VIDEO_TYPES = ("vod", "live", "playlist")
TABLE = "player_events"
MAX_CLIENT_ID = 2**32 - 1  # client_id is a UInt32
COLUMNS = ("client_id", "ts", "event", "type", "video_id", "view_id", "country", "host")


@dataclass(frozen=True, slots=True)
class PlayerEvent:
    client_id: int
    ts_ms: int  # server receive time, epoch ms UTC
    event: str
    type: str
    video_id: str
    view_id: str  # canonical lower-case UUID text
    country: str  # ISO 3166-1 alpha-2, ZZ when unknown
    host: str


def to_columns(events: Sequence[PlayerEvent]) -> dict[str, list[object]]:
    return {
        "client_id": [e.client_id for e in events],
        "ts": [e.ts_ms for e in events],
        "event": [e.event for e in events],
        "type": [e.type for e in events],
        "video_id": [e.video_id for e in events],
        "view_id": [e.view_id for e in events],
        "country": [e.country for e in events],
        "host": [e.host for e in events],
    }


def insert_events(storage: Storage, events: Sequence[PlayerEvent],
                  settings: QuerySettings | None = None) -> int:
    """Insert one block; its materialized views update the rollups in the same insert."""
    return storage.insert(TABLE, to_columns(events), settings, millis=("ts",))
