"""Brute-force counts for the statistics family's property tests: the generated events, each
with a video and a host, counted in Python the way each endpoint must count them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import strategies as st

from tests.support.api import auth_header, query_client
from tests.support.database import fresh_client_id, truncate_events
from tests.support.windows import BASE_MS, HOUR_MS, DrawnWindow, event_fields
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage
from viewstats.query_api.window import Window, parse_window

VIDEOS = ("v-1", "v-2", "v-3")
HOSTS = ("example.com", "b.example", "")
# ((client index, offset, country, event, type), video, host)
rich_events = st.lists(st.tuples(event_fields, st.sampled_from(VIDEOS), st.sampled_from(HOSTS)),
                       max_size=120)
FIELDS = {"country": "country", "event": "event", "type": "type", "id": "video_id",
          "host": "host", "browser": "browser", "os": "os", "platform": "platform"}
# The filters every statistics endpoint takes (an empty host is a 400), and the event counted.
filter_values = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(VIDEOS), "country": st.sampled_from(["AU", "US", "ZZ"]),
    "host": st.sampled_from([h for h in HOSTS if h]),
    "type": st.sampled_from(["vod", "live", "playlist"])})
counted_events = st.sampled_from([None, None, "watch", "init", "start"])


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


# Partial days and hours at both ends, over most of spread_events'.
SPREAD_WINDOW = {"date_from": "2024-02-27T10:30:00Z", "date_to": "2024-02-29T05:15:00.5Z"}


def spread_events(client_id: int) -> list[PlayerEvent]:
    """Every video, host and country, watched and started, each combination a different number
    of times and at a different hour over three days from BASE_MS."""
    combos = [(video, host, country, event) for video in VIDEOS for host in HOSTS
              for country in ("AU", "US", "ZZ") for event in ("watch", "start")]
    return [PlayerEvent(client_id, BASE_MS + (7 * i + j) * HOUR_MS // 3 % (72 * HOUR_MS), event,
                        "vod", video, f"00000000-0000-4000-8000-{i:06x}{j:06x}", country, host)
            for i, (video, host, country, event) in enumerate(combos) for j in range(1 + i % 4)]


def counted_in_player_events(storage: Storage, client_id: int, window: Window, key: str,
                             filters: Mapping[str, str]) -> list[tuple[str, int]]:
    """(value of `key`, count) in `player_events` itself, most first, then by value: the count
    an endpoint's filters must equal, made without the rollups or the breakdown. `filters` are
    field -> value as stored (type and event included; watch unless it names an event)."""
    selected = {"event": "watch", **filters}
    where = ["client_id = {client_id:UInt32}", "toUnixTimestamp64Milli(ts) >= {start:Int64}",
             "toUnixTimestamp64Milli(ts) < {end:Int64}",
             *(f"{FIELDS[name]} = {{{name}:String}}" for name in selected)]
    rows = storage.query(
        f"SELECT toString({FIELDS[key]}) AS k, count() AS n FROM player_events "
        f"WHERE {' AND '.join(where)} GROUP BY k ORDER BY n DESC, k",
        {"client_id": client_id, "start": window.start_ms, "end": window.end_ms, **selected})
    return [(str(k), int(n)) for k, n in rows]


def filtered_and_counted(storage: Storage, keys_path: Path, path: str, key: str,
                         sent: Mapping[str, str], stored: Mapping[str, str]
                         ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(what `path` answers over spread_events of a fresh client, as (key value, views), and
    counted_in_player_events for `stored`, the filters as the tables spell them), with SPREAD_WINDOW
    and `sent`; checks the filters select something, and not everything."""
    client_id = fresh_client_id()
    insert_events(storage, spread_events(client_id))
    headers = auth_header(keys_path, client_id)
    response = query_client(storage, keys_path).get(path, params={**SPREAD_WINDOW, **sent},
                                                     headers=headers)
    assert response.status_code == 200, response.text
    window = parse_window(SPREAD_WINDOW["date_from"], SPREAD_WINDOW["date_to"])
    expected = counted_in_player_events(storage, client_id, window, key, stored)
    assert expected and expected != counted_in_player_events(storage, client_id, window, key, {})
    return [(row[key], row["views"]) for row in response.json()["data"]], expected
