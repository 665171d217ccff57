"""The player event record, described once: its fields, enums, limits and table.

The collector's validation, the consumer's decoding of Kafka messages, the OpenAPI document and
the SQL schema's Enum8 columns all follow these definitions; `tests/test_events.py` checks the
schema against them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from operator import attrgetter

from viewstats.core.storage import QuerySettings, Storage
from viewstats.core.write_announcements import announcing_insert

TABLE = "player_events"
EVENTS = ("init", "start", "watch")  # Enum8 values 1, 2, 3 in that order
VIDEO_TYPES = ("vod", "live", "playlist")  # Enum8 values 1, 2, 3 in that order
MAX_CLIENT_ID = 2**32 - 1  # client_id is a UInt32
MAX_VIDEO_ID = 256
MAX_HOST = 253  # the longest DNS name; anything longer did not come from a real page
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01: DateTime64 and the query window stop before it
UNKNOWN_COUNTRY = "ZZ"
UNKNOWN = "unknown"  # a browser, operating system or platform the User-Agent does not name
PLATFORMS = ("unknown", "desktop", "mobile", "tablet", "tv", "bot")  # Enum8 values 1..6
MAX_DEVICE_NAME = 64  # of a browser or operating system name
MAX_PAGE_URL = 1024  # embed_url as stored; a longer page URL is kept as its origin (core/hosts.py)
MAX_VIEWER = 2**64 - 1  # viewer is a UInt64; 0 means no viewer key
# Clients may send any case; the record holds the canonical lower-case text.
VIEW_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
COUNTRY = re.compile(r"[A-Z]{2}")
REGION = re.compile(r"(?:[A-Z]{2}-[A-Z0-9]{1,3})?")  # ISO 3166-2, "" when unknown


@dataclass(frozen=True, slots=True)
class PlayerEvent:
    client_id: int
    ts_ms: int  # server receive time, epoch ms UTC
    event: str
    type: str
    video_id: str
    view_id: str  # canonical lower-case UUID text
    country: str  # ISO 3166-1 alpha-2, UNKNOWN_COUNTRY when unknown
    host: str  # the embedding page's host name, "" when unknown
    # The audience dimensions. Their defaults are what a row stored before they were collected
    # reads as (schema/0011), so an event made without them means the same.
    browser: str = UNKNOWN  # from the User-Agent (ingest/collector/user_agent.py)
    os: str = UNKNOWN
    platform: str = UNKNOWN  # one of PLATFORMS
    region: str = ""  # ISO 3166-2 code of the viewer's region, "" when unknown
    embed_url: str = ""  # the embedding page's URL without query or fragment, "" when unknown
    viewer: int = 0  # keyed hash of the viewer's IP (ingest/collector/viewer_key.py); 0: none


# Column of `player_events` (and key of the Kafka message) -> the PlayerEvent field it holds.
COLUMNS = {"client_id": "client_id", "ts": "ts_ms", "event": "event", "type": "type",
           "video_id": "video_id", "view_id": "view_id", "country": "country", "host": "host",
           "browser": "browser", "os": "os", "platform": "platform", "region": "region",
           "embed_url": "embed_url", "viewer": "viewer"}
_GETTERS = {column: attrgetter(field) for column, field in COLUMNS.items()}


def as_row(event: PlayerEvent) -> dict[str, object]:
    """The event keyed by column name (the Kafka message's JSON)."""
    return {column: get(event) for column, get in _GETTERS.items()}


def to_columns(events: Sequence[PlayerEvent]) -> dict[str, list[object]]:
    return {column: [get(e) for e in events] for column, get in _GETTERS.items()}


def insert_events(storage: Storage, events: Sequence[PlayerEvent],
                  settings: QuerySettings | None = None) -> int:
    """Insert one block and announce it (core/write_announcements.py); its materialized views
    update the rollups in the same insert."""
    stamps = [e.ts_ms for e in events]
    with announcing_insert(storage, {e.client_id for e in events}, min(stamps, default=0),
                           max(stamps, default=0)):
        written = storage.insert(TABLE, to_columns(events), settings, millis=("ts",))
    return written


def insert_json_rows(storage: Storage, lines: Sequence[bytes], client_ids: Collection[int],
                     ts_range: tuple[int, int], settings: QuerySettings | None = None) -> int:
    """Insert one block of events given as their JSON (`as_row`, checked: see ingest/wire.py;
    the engine reads `ts`, epoch ms, as DateTime64(3) ticks) and announce it; `client_ids` and
    `ts_range` (first and last ts) say what it touches."""
    with announcing_insert(storage, client_ids, *ts_range):
        written = storage.insert_json(TABLE, lines, settings)
    return written
