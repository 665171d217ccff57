"""Brute-force counts for the statistics family's property tests: the generated events, each
with a video and a host, counted in Python the way each endpoint must count them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import strategies as st

from tests.support.api import auth_header
from tests.support.database import fresh_client_id, truncate_events
from tests.support.windows import BASE_MS, DrawnWindow, event_fields
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage

VIDEOS = ("v-1", "v-2", "v-3")
HOSTS = ("example.com", "b.example", "")
# ((client index, offset, country, event, type), video, host)
rich_events = st.lists(st.tuples(event_fields, st.sampled_from(VIDEOS), st.sampled_from(HOSTS)),
                       max_size=120)
FIELDS = {"country": "country", "event": "event", "type": "type", "id": "video_id",
          "host": "host"}


@pytest.fixture(scope="module")
def keyed_clients(tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[dict[int, dict[str, str]], Path]:
    """Three fresh clients with their auth headers, and the key file that holds them."""
    keys = tmp_path_factory.mktemp("keys") / "api_keys"
    return three_clients(keys), keys


def three_clients(keys_path: Path) -> dict[int, dict[str, str]]:
    """Three fresh clients and their auth headers, made before any app reads the key file."""
    return {c: auth_header(keys_path, c) for c in (fresh_client_id() for _ in range(3))}


def player_events(clients: Sequence[int],
                  generated: Sequence[tuple[tuple[int, int, str, str, str], str, str]]
                  ) -> list[PlayerEvent]:
    return [PlayerEvent(clients[c], BASE_MS + offset, event, kind, video,
                        f"00000000-0000-4000-8000-{i:012x}", country, host)
            for i, ((c, offset, country, event, kind), video, host) in enumerate(generated)]


def store_only(storage: Storage, clients: Sequence[int],
               generated: Sequence[tuple[tuple[int, int, str, str, str], str, str]]
               ) -> list[PlayerEvent]:
    """Empty the event tables and store just these events (one example's database)."""
    truncate_events(storage)
    rows = player_events(clients, generated)
    if rows:
        insert_events(storage, rows, {"insert_deduplicate": 0})
    return rows


def bucket_of(ts_ms: int, bucket: str) -> str:
    at = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return f"{at:%Y-%m-%d}" if bucket == "day" else f"{at:%Y-%m-%dT%H}:00:00Z"


def brute_force(events: Sequence[PlayerEvent], client_id: int, window: DrawnWindow, *,
                keys: Sequence[str], bucket: str | None = None,
                filters: Mapping[str, str] | None = None,
                event: str | None = None) -> Counter[tuple[str, ...]]:
    """Counts keyed by (bucket if any, *keys): `event` events, or every event when keyed by
    event and no event is named, else watch; `filters` are field -> value (type included)."""
    counted = event or (None if "event" in keys else "watch")
    found: Counter[tuple[str, ...]] = Counter()
    for e in events:
        if (e.client_id != client_id or not window.start_ms <= e.ts_ms < window.end_ms
                or counted not in (None, e.event)
                or any(getattr(e, FIELDS[f]) != v for f, v in (filters or {}).items())):
            continue
        key = tuple(getattr(e, FIELDS[k]) for k in keys)
        found[(bucket_of(e.ts_ms, bucket), *key) if bucket else key] += 1
    return found
