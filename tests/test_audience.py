"""The audience endpoints (architecture §18) equal a brute-force count for any window, filters
and event: `browsers`, `systems`, `regions` and `embeds` rank views of their field, most first;
`uniqs` counts distinct viewer keys per group, leaving out events without one; keys keep
clients apart, and `group=ip` is a 400 saying that IPs are not stored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import query_client
from tests.support.breakdowns import bucket_of, counted_events, three_clients
from tests.support.database import truncate_events
from tests.support.windows import BASE_MS, DrawnWindow, draw_window, event_fields
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.regions import region_name
from viewstats.core.storage import Storage
from viewstats.query_api.uniqs import GROUPS

pytestmark = pytest.mark.chdb

# (browser, os, platform) as the collector derives them, and (country, region) pairs that agree.
DEVICES = (("Chrome", "Windows", "desktop"), ("Mobile Safari", "iOS", "mobile"),
           ("Chrome Mobile", "Android", "tablet"), ("unknown", "unknown", "unknown"))
PLACES = (("AU", "AU-NSW"), ("AU", ""), ("US", "US-CA"), ("ZZ", ""))
PAGES = ("https://example.com/watch", "https://b.example/", "")
VIDEOS = ("v-1", "v-2")
# ((client index, offset, country (unused: PLACES says), event, type), video, device, place,
# page, viewer (0: none))
Generated = tuple[tuple[int, int, str, str, str], str, tuple[str, str, str], tuple[str, str],
                  str, int]
audience_events = st.lists(st.tuples(
    event_fields, st.sampled_from(VIDEOS), st.sampled_from(DEVICES), st.sampled_from(PLACES),
    st.sampled_from(PAGES), st.integers(0, 6)), max_size=100)
filter_values = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(VIDEOS), "country": st.sampled_from(["AU", "US", "ZZ"]),
    "host": st.sampled_from(["example.com", "b.example"]),
    "type": st.sampled_from(["vod", "live", "playlist"])})
FIELDS = {"country": "country", "event": "event", "type": "type", "id": "video_id",
          "host": "host", "browser": "browser", "os": "os", "platform": "platform",
          "region": "region", "embed_url": "embed_url"}
RANKED = {"browsers": ("browser", "browser"), "systems": ("os", "os"),
          "regions": ("region", "region"), "embeds": ("embed_url", "embed_url")}


def store(storage: Storage, clients: Sequence[int], generated: Sequence[Generated]
          ) -> list[PlayerEvent]:
    truncate_events(storage)
    rows = [PlayerEvent(clients[c], BASE_MS + offset, event, kind, video,
                        f"00000000-0000-4000-8000-{i:012x}", country,
                        page.split("/")[2] if page else "", browser, os, platform, region,
                        page, viewer)
            for i, ((c, offset, _, event, kind), video, (browser, os, platform),
                    (country, region), page, viewer) in enumerate(generated)]
    if rows:
        insert_events(storage, rows, {"insert_deduplicate": 0})
    return rows


def selected(events: Sequence[PlayerEvent], client_id: int, window: DrawnWindow,
             filters: dict[str, str], counted: str | None) -> list[PlayerEvent]:
    return [e for e in events if e.client_id == client_id
            and window.start_ms <= e.ts_ms < window.end_ms and counted in (None, e.event)
            and all(getattr(e, FIELDS[f]) == v for f, v in filters.items())]


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=audience_events, filters=filter_values, event=counted_events, data=st.data())
def test_ranked_endpoints_match_brute_force(
        storage: Storage, keyed_clients: tuple[dict[int, dict[str, str]], Path],
        generated: list[Generated], filters: dict[str, str], event: str | None,
        data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store(storage, clients, generated)
    params = {**window.params, **filters, **({"event": event} if event else {})}
    client = query_client(storage, keys)
    for path, (field, name) in RANKED.items():
        for client_id in clients:
            response = client.get(f"/streaming/statistics/{path}", params=params,
                                  headers=headers[client_id])
            assert response.status_code == 200, response.text
            counts: dict[str, int] = {}
            for e in selected(rows, client_id, window, filters, event or "watch"):
                value = getattr(e, FIELDS[field])
                counts[value] = counts.get(value, 0) + 1
            expected = [{"views": n, name: value,
                         **({"region_name": region_name(value)} if path == "regions" else {})}
                        for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
            assert response.json() == {"data": expected}, (path, params, client_id)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=audience_events, filters=filter_values, event=counted_events,
       group=st.lists(st.sampled_from(GROUPS), unique=True, max_size=3), data=st.data())
def test_unique_viewers_match_brute_force(
        storage: Storage, keyed_clients: tuple[dict[int, dict[str, str]], Path],
        generated: list[Generated], filters: dict[str, str], event: str | None,
        group: list[str], data: st.DataObject) -> None:
    window = draw_window(data, [fields[1] for fields, *_ in generated])
    headers, keys = keyed_clients
    clients = list(headers)
    rows = store(storage, clients, generated)
    params = {**window.params, **filters, **({"event": event} if event else {}),
              **({"group": ",".join(group)} if group else {})}
    grouped = [name for name in GROUPS if name in group and name != "date"]
    client = query_client(storage, keys)
    for client_id in clients:
        response = client.get("/streaming/statistics/uniqs", params=params,
                              headers=headers[client_id])
        assert response.status_code == 200, response.text
        viewers: dict[tuple[str, ...], set[int]] = {}
        for e in selected(rows, client_id, window, filters, event):
            day = bucket_of(e.ts_ms, "day") if "date" in group \
                else bucket_of(math.ceil(window.start_ms), "day")
            key = (day, *(getattr(e, FIELDS[name]) for name in grouped))
            found = viewers.setdefault(key, set())
            if e.viewer:
                found.add(e.viewer)
        if not group:  # one row for the window, 0 when it holds no one
            viewers = {(bucket_of(math.ceil(window.start_ms), "day"),): viewers.get(
                (bucket_of(math.ceil(window.start_ms), "day"),), set())}
        expected = sorted(({"date": key[0], **dict(zip(grouped, key[1:], strict=True)),
                            "unique_ips": len(found)} for key, found in viewers.items()
                           if found or not group),
                          key=lambda row: (row["date"], *(str(row[n]) for n in grouped)))
        assert response.json() == {"data": expected}, (params, client_id)


def test_group_by_ip_is_a_400_saying_ips_are_not_stored(storage: Storage,
                                                        tmp_path: Path) -> None:
    headers = three_clients(tmp_path / "keys")
    response = query_client(storage, tmp_path / "keys").get(
        "/streaming/statistics/uniqs",
        params={"date_from": "2024-02-27", "date_to": "2024-02-28", "group": "date,ip"},
        headers=next(iter(headers.values())))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error.startswith("group: ip cannot be grouped by: viewer IPs are not stored")


def test_the_ranked_endpoints_take_no_group(storage: Storage, tmp_path: Path) -> None:
    headers = three_clients(tmp_path / "keys")
    client = query_client(storage, tmp_path / "keys")
    for path in RANKED:
        response = client.get(f"/streaming/statistics/{path}",
                              params={"date_from": "2024-02-27", "date_to": "2024-02-28",
                                      "group": "os"}, headers=next(iter(headers.values())))
        assert response.status_code == 400, path
        assert response.json()["errors"][0].startswith("group: unknown query param")
