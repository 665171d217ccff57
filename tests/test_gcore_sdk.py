"""Gcore's official Python SDK (`gcore` on PyPI), unchanged, reads a running viewstats
(architecture §15, §18): countries, views, hosts, popular and the audience (uniqs, browsers,
systems, regions, embeds), with the numbers of a brute-force
count over known events, and the request it sends is what our auth takes."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import gcore
import httpx
import pytest

from tests.support.breakdowns import brute_force, bucket_of
from tests.support.processes import key_token, serving, viewstats
from tests.support.windows import DrawnWindow
from viewstats.core.events import PlayerEvent
from viewstats.query_api.window import parse_window

pytestmark = [pytest.mark.chdb, pytest.mark.slow]

CLIENT, OTHER = 17, 18
START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
DATE_FROM, DATE_TO = "2024-05-01T10:30:00+02:00", "2024-05-03T05:15:00.5Z"
# Over the largest answer the other tests read (3 days x 2 types x 3 hosts x 3 countries), under
# the hourly one by every group field.
MAX_ROWS = 60

# Runs in its own process: the server will own the data path, and so may this test process.
_INSERT = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.core.events import PlayerEvent, insert_events
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
insert_events(storage, [PlayerEvent(*e) for e in json.loads(sys.stdin.read())])
storage.close()
"""


DEVICES = (("Chrome", "Windows", "desktop"), ("Mobile Safari", "iOS", "mobile"),
           ("unknown", "unknown", "unknown"))
REGIONS = {"AU": ("AU-NSW", "AU-VIC", ""), "US": ("US-CA", ""), "ZZ": ("",)}


def _events() -> list[PlayerEvent]:
    rng = random.Random(12)
    events = []
    for i in range(400):
        country, host = rng.choice(["AU", "US", "ZZ"]), rng.choice(["example.com", "b.example", ""])
        page = f"https://{host}/{rng.choice(['a', 'b'])}" if host else ""
        events.append(PlayerEvent(
            rng.choice([CLIENT, CLIENT, OTHER]), START_MS + rng.randrange(3 * 86_400_000),
            rng.choice(["watch", "watch", "init", "start"]), rng.choice(["vod", "live"]),
            rng.choice(["v-1", "v-2", "v-3"]), f"00000000-0000-4000-8000-{i:012x}", country,
            host, *rng.choice(DEVICES), rng.choice(REGIONS[country]), page,
            rng.randrange(40)))  # 0: an event without a viewer key, as stored before them
    return events


EVENTS = _events()
_parsed = parse_window(DATE_FROM, DATE_TO)
WINDOW = DrawnWindow({"date_from": DATE_FROM, "date_to": DATE_TO},
                     _parsed.start_ms, _parsed.end_ms)


ANSWERS: list[httpx.Response] = []  # every answer the SDK received, as its client saw them


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[gcore.Gcore, list[httpx.Request]]]:
    """The SDK pointed at a `viewstats run` holding EVENTS, and the requests it sent."""
    data = tmp_path_factory.mktemp("gcore") / "data"
    viewstats("migrate", "--data-dir", str(data))
    rows = [dataclasses.astuple(e) for e in EVENTS]
    subprocess.run([sys.executable, "-c", _INSERT, str(data / "clickhouse")],
                   input=json.dumps(rows), text=True, check=True, timeout=120)
    token = key_token(data, CLIENT)
    sent: list[httpx.Request] = []
    hooks: dict[str, list[Callable[..., Any]]] = {"request": [sent.append],
                                                  "response": [ANSWERS.append]}
    with serving("run", data, env={"QUERY_MAX_ROWS": str(MAX_ROWS)}) as (base, _proc), \
            httpx.Client(event_hooks=hooks) as http:
        yield gcore.Gcore(api_key=token, base_url=base, http_client=http, max_retries=0), sent


def test_it_sends_the_key_as_gcore_does_and_we_take_it(
        sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    client, sent = sdk
    client.streaming.statistics.get_views_by_hostname(date_from=DATE_FROM, date_to=DATE_TO)
    scheme, _, token = sent[-1].headers["authorization"].partition(" ")
    assert scheme == "APIKey" and "$" in token  # not our lower-case `apikey`: still accepted


def test_countries(sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    got = sdk[0].streaming.statistics.get_views_by_country(date_from=DATE_FROM, date_to=DATE_TO)
    counts = brute_force(EVENTS, CLIENT, WINDOW, keys=("country",))
    assert {row.country: row.views for row in got.data or []} == {
        country: n for (country,), n in counts.items()}
    assert {row.country_name for row in got.data or []} == {"Australia", "United States",
                                                            "Unknown"}


def test_hosts(sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    got = sdk[0].streaming.statistics.get_views_by_hostname(
        date_from=DATE_FROM, date_to=DATE_TO, type="vod")
    counts = brute_force(EVENTS, CLIENT, WINDOW, keys=("host",), filters={"type": "vod"})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(row.host, row.views) for row in got.data or []] == [(h, n) for (h,), n in ranked]


def test_popular(sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    got = sdk[0].streaming.statistics.get_popular_videos(date_from=DATE_FROM, date_to=DATE_TO)
    counts = brute_force(EVENTS, CLIENT, WINDOW, keys=("id",))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(row.id, row.views) for row in got.data or []] == [(v, n) for (v,), n in ranked]


@pytest.mark.parametrize(("group", "filters"), [
    ([], {}),
    (["host", "country"], {}),
    (["event"], {"type": "live"}),
    (["id"], {"host": "example.com"}),
    ([], {"id": "v-2", "country": "AU", "event": "start"}),
    (["os", "platform"], {}),
    (["browser"], {"country": "AU"}),
])
def test_views(sdk: tuple[gcore.Gcore, list[httpx.Request]], group: list[str],
               filters: dict[str, str]) -> None:
    arguments: dict[str, Any] = {**filters, **({"group": group} if group else {})}
    got = sdk[0].streaming.statistics.get_views(date_from=DATE_FROM, date_to=DATE_TO,
                                                **arguments)
    keys = ("type", *group)
    event = filters.get("event")
    counts = brute_force(EVENTS, CLIENT, WINDOW, keys=keys, bucket="day", event=event,
                         filters={k: v for k, v in filters.items() if k != "event"})
    assert {(row.date, *(getattr(row, k) for k in keys)): row.views
            for row in got.data or []} == dict(counts)
    assert counts, "the case counts something"
    # The SDK repeats the parameter (group=host&group=country); a comma list works too.
    assert sdk[1][-1].url.params.get_list("group") == group


def test_it_reads_gzipped_answers_and_each_has_a_request_id(
        sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    client, sent = sdk
    got = client.streaming.statistics.get_views(date_from=DATE_FROM, date_to=DATE_TO,
                                                group=["host", "country"])
    assert "gzip" in sent[-1].headers["accept-encoding"]  # httpx's default, as the SDK sends
    assert ANSWERS[-1].headers["content-encoding"] == "gzip"  # over 1 KiB
    assert len(got.data or []) > 10
    assert all(answer.headers["x-request-id"] for answer in ANSWERS)


def test_an_answer_past_the_cap_reaches_the_sdk_as_its_422(
        sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    with pytest.raises(gcore.UnprocessableEntityError) as raised:
        sdk[0].streaming.statistics.get_views(
            date_from=DATE_FROM, date_to=DATE_TO, group=["host", "country", "event", "id"],
            extra_query={"granularity": "1h"})
    assert raised.value.status_code == 422
    assert raised.value.body == {"data": [], "errors": [
        f"the answer would have more than {MAX_ROWS} rows; narrow the request: a shorter "
        "window (date_from, date_to), granularity=1d, fewer group fields, or a filter (id, "
        "country, host, event, type)"]}


def test_hosts_with_a_limit(sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    got = sdk[0].streaming.statistics.get_views_by_hostname(
        date_from=DATE_FROM, date_to=DATE_TO, extra_query={"limit": 2})
    counts = brute_force(EVENTS, CLIENT, WINDOW, keys=("host",))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert [(row.host, row.views) for row in got.data or []] == [(h, n) for (h,), n in ranked]


@pytest.mark.parametrize("filters", [{"country": "ZZ"}, {"id": "v-2", "country": "AU"},
                                     {"host": "b.example", "event": "start"}])
def test_hosts_popular_and_countries_take_the_filters_as_extra_query(
        sdk: tuple[gcore.Gcore, list[httpx.Request]], filters: dict[str, str]) -> None:
    """The SDK names only `type` for these three; the other filters go as its extra_query."""
    statistics = sdk[0].streaming.statistics
    selected = {k: v for k, v in filters.items() if k != "event"}
    event = filters.get("event")
    answers = {
        "host": statistics.get_views_by_hostname(date_from=DATE_FROM, date_to=DATE_TO,
                                                 extra_query=filters).data,
        "id": statistics.get_popular_videos(date_from=DATE_FROM, date_to=DATE_TO,
                                            extra_query=filters).data,
        "country": statistics.get_views_by_country(date_from=DATE_FROM, date_to=DATE_TO,
                                                   extra_query=filters).data,
    }
    for key, rows in answers.items():
        counts = brute_force(EVENTS, CLIENT, WINDOW, keys=(key,), filters=selected, event=event)
        assert counts and counts != brute_force(EVENTS, CLIENT, WINDOW, keys=(key,))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        assert [(getattr(row, key), row.views) for row in rows or []] == [
            (value, n) for (value,), n in ranked], (key, filters)


def test_a_parameter_an_endpoint_does_not_take_reaches_the_sdk_as_its_400(
        sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    with pytest.raises(gcore.BadRequestError) as raised:
        sdk[0].streaming.statistics.get_views_by_country(
            date_from=DATE_FROM, date_to=DATE_TO, extra_query={"limit": 5})
    assert raised.value.body == {"data": [], "errors": [
        "limit: unknown query param; this endpoint takes date_from, date_to, type, id, country, "
        "host, event"]}


def _watched(**filters: str) -> list[PlayerEvent]:
    return [e for e in EVENTS if e.client_id == CLIENT and e.event == "watch"
            and WINDOW.start_ms <= e.ts_ms < WINDOW.end_ms
            and all(getattr(e, name) == value for name, value in filters.items())]


def _ranked(events: list[PlayerEvent], field: str) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for e in events:
        counts[getattr(e, field)] = counts.get(getattr(e, field), 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def test_browsers_systems_regions_and_embeds(
        sdk: tuple[gcore.Gcore, list[httpx.Request]]) -> None:
    stats = sdk[0].streaming.statistics
    browsers = stats.get_views_by_browsers(date_from=DATE_FROM, date_to=DATE_TO)
    assert [(r.browser, r.views) for r in browsers.data or []] == _ranked(_watched(), "browser")
    systems = stats.get_views_by_operating_system(date_from=DATE_FROM, date_to=DATE_TO, type="live")
    assert [(r.os, r.views) for r in systems.data or []] == _ranked(_watched(type="live"), "os")
    regions = stats.get_views_by_region(date_from=DATE_FROM, date_to=DATE_TO)
    assert [(r.region, r.views) for r in regions.data or []] == _ranked(_watched(), "region")
    assert {r.region: r.region_name for r in regions.data or []} == {
        "AU-NSW": "New South Wales", "AU-VIC": "Victoria", "US-CA": "California", "": ""}
    embeds = stats.get_views_by_referer(date_from=DATE_FROM, date_to=DATE_TO)
    assert [(r.embed_url, r.views) for r in embeds.data or []] == _ranked(_watched(),
                                                                        "embed_url")


@pytest.mark.parametrize(("group", "filters"), [
    ([], {}),
    (["date"], {}),
    (["date", "browser"], {"type": "vod"}),
    (["country", "platform"], {"event": "watch"}),
])
def test_unique_viewers(sdk: tuple[gcore.Gcore, list[httpx.Request]], group: list[str],
                        filters: dict[str, str]) -> None:
    arguments: dict[str, Any] = {**filters, **({"group": group} if group else {})}
    got = sdk[0].streaming.statistics.get_unique_viewers(date_from=DATE_FROM, date_to=DATE_TO,
                                                         **arguments)
    grouped = [name for name in group if name != "date"]
    viewers: dict[tuple[str, ...], set[int]] = {}
    for e in EVENTS:
        if e.client_id != CLIENT or not WINDOW.start_ms <= e.ts_ms < WINDOW.end_ms \
                or not e.viewer or any(getattr(e, k) != v for k, v in filters.items()):
            continue
        day = bucket_of(e.ts_ms, "day") if "date" in group else "2024-05-01"
        viewers.setdefault((day, *(getattr(e, k) for k in grouped)), set()).add(e.viewer)
    assert {(row.date, *(getattr(row, k) for k in grouped)): row.unique_ips
            for row in got.data or []} == {key: len(found) for key, found in viewers.items()}
    assert len(viewers) > 1 or not group
