"""The dashboard at `/` in real Chromium, on `viewstats run` holding known events.

One platform for the module: events of the last days are written into its data dir before it
starts (the collector stamps its own time, so history cannot come through it), the player adds
a view while a dashboard is open, opened by itself and then embedded in a customer's page on
another origin. Every number on the page is checked against the known events
and against what the public API answers for the same window. Screenshots go to
tests/artifacts/ (printed), at desktop and phone width.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, Request

from tests.support.browser import PLAYER_READY, open_player, play, wait_until
from tests.support.dashboard import (
    DESKTOP,
    PHONE,
    REFRESHED,
    STATS,
    NewPage,
    Platform,
    country_point,
    customer_site,
    has_row,
    open_dashboard,
    platform_with,
    screenshot,
    share,
    table,
)

pytestmark = [pytest.mark.browser, pytest.mark.chdb, pytest.mark.slow]

CLIENT, OTHER_CLIENT = 17, 18
LOOPBACK_COUNTRY = "NZ"  # where the shared test GeoIP database puts the browser
NO_VIEWS_FILL = "rgb(231, 235, 241)"  # #e7ebf1


@dataclass(frozen=True)
class View:
    hours_ago: int
    country: str
    video: str
    host: str
    type: str


# Known views of the client over the last six days; init and start events come with each, and
# the other client's views must never show.
COUNTRY_VIEWS = {"US": 9, "BR": 6, "AU": 4, "DE": 3, "GB": 2, "IN": 1, "ZZ": 1}
VIDEOS = ("v-launch", "v-keynote", "v-trailer")
HOSTS = ("example.com", "news.example.org", "")
KNOWN = [View((i * 11 + j * 17) % 130 + 1, country, VIDEOS[(i + j) % 3], HOSTS[j % 3],
              "live" if j % 4 == 3 else "vod")
         for i, (country, views) in enumerate(COUNTRY_VIEWS.items()) for j in range(views)]

def known_views(now: datetime) -> list[dict[str, Any]]:
    now_ms = int(now.timestamp() * 1000)
    views: list[dict[str, Any]] = [
        {"client_id": CLIENT, "ts_ms": now_ms - view.hours_ago * 3_600_000 - 120_000,
         "country": view.country, "video_id": view.video, "host": view.host, "type": view.type}
        for view in KNOWN]
    views += [{"client_id": OTHER_CLIENT, "ts_ms": now_ms - 7_200_000, "country": "US",
               "video_id": "v-other", "host": "other.example", "type": "vod"}] * 20
    return views


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, hls_media: Path) -> Iterator[Platform]:
    now = datetime.now(UTC)
    data = tmp_path_factory.mktemp("dashboard") / "data"
    with platform_with(data, known_views(now), CLIENT, hls_media, now) as running:
        yield running


def hover_country(page: Page, code: str) -> str:
    """Move the real mouse onto a point inside the country's shape; the tooltip's text."""
    page.mouse.move(*country_point(page, code))
    wait_until(page, f"!document.getElementById('tooltip').hidden && "
                     f"document.getElementById('tooltip').dataset.code === '{code}'")
    text: str = page.inner_text("#tooltip")
    return text


def test_the_page_shows_the_numbers_the_api_gives(new_page: NewPage, platform: Platform) -> None:
    page = new_page(DESKTOP)
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
    open_dashboard(page, platform.url())
    countries = platform.api("countries")
    assert {row["country"]: row["views"] for row in countries} == COUNTRY_VIEWS  # known events
    total = sum(COUNTRY_VIEWS.values())

    # The country table: English name, code, views, share, in the API's order.
    assert table(page, "#countries") == [
        [row["country_name"], row["country"], str(row["views"]), share(row["views"], total)]
        for row in countries]
    assert page.inner_text("#kpi-views") == str(total)

    # The map: each country's fill and views, and the tooltip under the mouse.
    views_on_map = dict(page.eval_on_selector_all(
        "#map path.country", "els => els.map(e => [e.dataset.code, +e.dataset.views])"))
    for row in countries:
        if row["country"] != "ZZ":
            assert views_on_map[row["country"]] == row["views"], row
    assert views_on_map["FR"] == 0 and views_on_map["NZ"] == 0
    fills = dict(page.eval_on_selector_all(  # as drawn: the computed style
        "#map path.country", "els => els.map(e => [e.dataset.code, getComputedStyle(e).fill])"))
    assert fills["FR"] == fills["NZ"] == NO_VIEWS_FILL
    assert NO_VIEWS_FILL != fills["IN"] != fills["US"] != NO_VIEWS_FILL  # fewest and most differ
    assert hover_country(page, "US") == f"United States 9 views · {share(9, total)}"
    assert hover_country(page, "BR") == f"Brazil 6 views · {share(6, total)}"

    # The chart (per UTC day for a week) and its data, as /views gives them.
    per_day = Counter[str]()
    for row in platform.api("views"):
        per_day[row["date"]] += row["views"]
    assert sum(per_day.values()) == total
    assert table(page, "#series") == [[day, str(views)] for day, views in sorted(per_day.items())]
    assert page.locator("#chart canvas").count() == 1
    assert "per UTC day" in page.inner_text("#granularity")

    # Top videos and hosts, as /popular and /hosts give them, and as the known events make them.
    popular = platform.api("popular", limit="10")
    assert table(page, "#popular") == [[row["id"], str(row["views"])] for row in popular]
    assert {row["id"]: row["views"] for row in popular} == Counter(v.video for v in KNOWN)
    hosts = platform.api("hosts")
    assert table(page, "#hosts") == [[row["host"] or "(no host)", str(row["views"])]
                                     for row in hosts]
    assert {row["host"]: row["views"] for row in hosts} == Counter(v.host for v in KNOWN)

    # The CSV download of the country table.
    with page.expect_download() as download:
        page.click("#csv")
    path = download.value.path()
    assert path is not None
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert [(r["country"], r["country_name"], int(r["views"])) for r in rows] == [
        (row["country"], row["country_name"], row["views"]) for row in countries]
    assert download.value.suggested_filename.endswith(".csv")

    # The key stays in the browser: out of the address bar, in this tab's storage, and sent
    # only in the Authorization header of the API calls.
    assert platform.token not in page.url
    assert not [url for url, _ in requests if platform.token in url]
    assert {auth for url, auth in requests if STATS in url} == {f"apikey {platform.token}"}
    assert page.evaluate("sessionStorage.getItem('viewstats.key')") == platform.token
    assert page.get_by_role("link", name="IP Geolocation by DB-IP").get_attribute(
        "href") == "https://db-ip.com"
    hover_country(page, "US")  # the screenshot shows a tooltip too
    screenshot(page, "dashboard-desktop.png")


def test_a_short_window_is_charted_by_the_hour(new_page: NewPage, platform: Platform) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    hourly = Platform(platform.base, platform.token, start, end)
    page = open_dashboard(new_page(DESKTOP), hourly.url())
    per_hour = Counter[str]()
    for row in hourly.api("views", granularity="1h"):
        per_hour[row["date"]] += row["views"]
    assert per_hour  # the known events put some views in the last 30 hours
    assert table(page, "#series") == [[hour, str(v)] for hour, v in sorted(per_hour.items())]
    assert "per hour" in page.inner_text("#granularity")
    assert sum(int(row[2]) for row in table(page, "#countries")) == sum(per_hour.values())
    screenshot(page, "dashboard-hourly.png")


def test_the_type_filter_and_a_preset_in_a_time_zone(new_page: NewPage, platform: Platform) -> None:
    page = open_dashboard(new_page(DESKTOP, "Asia/Kolkata"), platform.url())
    assert page.input_value("#tz") in ("Asia/Kolkata", "Asia/Calcutta")  # the browser's zone
    page.select_option("#type", "live")
    wait_until(page, "location.hash.includes('type=live') && !viewstatsDashboard.busy")
    live = platform.api("countries", type="live")
    assert {row["country"]: row["views"] for row in live} == Counter(
        v.country for v in KNOWN if v.type == "live")
    wait_until(page, f"document.getElementById('kpi-views').textContent === "
                     f"'{sum(row['views'] for row in live)}'")
    assert [row[:3] for row in table(page, "#countries")] == [
        [row["country_name"], row["country"], str(row["views"])] for row in live]

    # "Today" in India: from its midnight (+05:30) to its last second, as the API reads it.
    page.click("[data-preset=today]")
    wait_until(page, "location.hash.includes('preset=today') && !viewstatsDashboard.busy")
    today = datetime.now(ZoneInfo("Asia/Kolkata")).date()
    india = Platform(platform.base, platform.token, f"{today}T00:00:00+05:30",
                     f"{today}T23:59:59+05:30")
    expected = india.api("countries", type="live")
    wait_until(page, f"document.getElementById('kpi-views').textContent === "
                     f"'{sum(row['views'] for row in expected)}'")
    assert [row[:3] for row in table(page, "#countries")] == [
        [row["country_name"], row["country"], str(row["views"])] for row in expected]
    assert f"{today.day} {today:%b %Y}, 00:00" in page.inner_text("#kpi-window")

    # A custom window, typed in India's wall time, goes to the API with India's offset.
    page.click("[data-preset=custom]")
    start = today - timedelta(days=3)
    page.fill("#from", f"{start}T06:30:00")
    page.fill("#to", f"{today}T12:00:00")
    page.click("#apply")
    custom = Platform(platform.base, platform.token, f"{start}T06:30:00+05:30",
                      f"{today}T12:00:00+05:30")
    wait_until(page, "!viewstatsDashboard.busy && decodeURIComponent(location.hash)"
                     f".includes('date_from={custom.date_from}')")
    expected = custom.api("countries", type="live")
    wait_until(page, f"document.getElementById('kpi-views').textContent === "
                     f"'{sum(row['views'] for row in expected)}'")
    assert [row[:3] for row in table(page, "#countries")] == [
        [row["country_name"], row["country"], str(row["views"])] for row in expected]


def test_the_page_fits_a_phone(new_page: NewPage, platform: Platform) -> None:
    page = open_dashboard(new_page(PHONE), platform.url())
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#map svg", "#chart canvas", "#countries", "#popular", "#hosts", "#csv",
                     "#uniques-chart canvas", "#regions", "#embeds", "#browsers", "#systems"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, selector
    screenshot(page, "dashboard-phone.png")


def test_a_key_typed_into_the_field(new_page: NewPage, platform: Platform) -> None:
    page = new_page(DESKTOP)
    page.goto(platform.base + "/")  # as `make run` users first see it: no key yet
    wait_until(page, "!document.getElementById('message').hidden", 20)
    assert "Enter an API key" in page.inner_text("#message")
    screenshot(page, "dashboard-no-key.png")
    page.fill("#key", platform.token)
    page.click("#key-form button[type=submit]")
    wait_until(page, REFRESHED, 20)
    # The default window is the last 7 days to the end of today, in UTC here: the module's.
    assert "preset=7d" in page.url
    assert not page.is_visible("#from")  # the custom window's fields only with "Custom"
    assert [row[:3] for row in table(page, "#countries")] == [
        [row["country_name"], row["country"], str(row["views"])]
        for row in platform.api("countries")]
    assert page.evaluate("sessionStorage.getItem('viewstats.key')") == platform.token
    page.click("#forget")
    wait_until(page, "sessionStorage.getItem('viewstats.key') === null")
    assert "Enter an API key" in page.inner_text("#message")
    assert table(page, "#countries") == []


def test_a_wrong_key_shows_the_apis_message(new_page: NewPage, platform: Platform) -> None:
    wrong = "1$not-a-secret"
    answer = httpx.get(platform.base + STATS + "countries", headers={
        "Authorization": f"apikey {wrong}"}, params={"date_from": platform.date_from,
                                                    "date_to": platform.date_to})
    assert answer.status_code == 401
    page = new_page(DESKTOP)
    page.goto(platform.url(key=wrong))
    wait_until(page, "!document.getElementById('message').hidden", 20)
    message = page.inner_text("#message")
    assert "did not accept this key" in message
    assert answer.json()["errors"][0] in message
    assert table(page, "#countries") == []
    screenshot(page, "dashboard-wrong-key.png")


def test_a_view_played_in_the_player_appears_without_a_reload(
        new_page: NewPage, platform: Platform) -> None:
    page = open_dashboard(new_page(DESKTOP), platform.url())
    assert "Live" in page.inner_text("#status")
    page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
    before = page.evaluate("viewstatsDashboard.refreshes")
    assert LOOPBACK_COUNTRY not in {row[1] for row in table(page, "#countries")}

    player = new_page(DESKTOP)
    open_player(player, f"{platform.base}/player/{CLIENT}/v-live-e2e"
                        f"?src={platform.base}/media/test/index.m3u8&type=vod")
    play(player)
    wait_until(player, "viewstatsPlayer.sent.some(s => s.event === 'watch' && s.result === 202)",
               20)

    wait_until(page, "Array.from(document.querySelectorAll('#countries tbody tr'))"
                     f".some(r => r.dataset.code === '{LOOPBACK_COUNTRY}')", 15)
    assert page.evaluate("window.sameDocument") is True
    assert page.evaluate("viewstatsDashboard.refreshes") > before
    row = next(r for r in table(page, "#countries") if r[1] == LOOPBACK_COUNTRY)
    assert row[:3] == ["New Zealand", LOOPBACK_COUNTRY, "1"]
    assert ["v-live-e2e", "1"] in table(page, "#popular")
    assert page.inner_text("#kpi-views") == str(sum(COUNTRY_VIEWS.values()) + 1)
    # Opened by itself, the player has no embedding site: not the platform's host.
    hosts = table(page, "#hosts")
    assert ["(no host)", str(Counter(v.host for v in KNOWN)[""] + 1)] in hosts
    assert "127.0.0.1" not in {row[0] for row in hosts}


# A customer's article embedding two players: as the README's snippet does, and bare, under the
# browser's default referrer policy. `{player}` is the player's URL without its video id.
ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An article</title></head>
<body>
<h1>An article on a customer's site</h1>
<iframe name="snippet" src="{player}/v-embed-snippet?src={media}&type=vod"
        referrerpolicy="no-referrer-when-downgrade" allow="autoplay; fullscreen" allowfullscreen
        width="640" height="360"></iframe>
<iframe name="bare" src="{player}/v-embed-bare?src={media}&type=vod"
        width="640" height="360"></iframe>
</body></html>
"""


def test_a_player_embedded_on_another_site_counts_under_that_sites_host(
        new_page: NewPage, platform: Platform) -> None:
    dashboard = open_dashboard(new_page(DESKTOP), platform.url())
    assert "localhost" not in {row[0] for row in table(dashboard, "#hosts")}
    html = ARTICLE.format(player=f"{platform.base}/player/{CLIENT}",
                          media=f"{platform.base}/media/test/index.m3u8")
    with customer_site(html) as site:
        article = new_page(DESKTOP)
        beacons: list[tuple[str, str]] = []

        def beacon(request: Request) -> None:
            if request.url == f"{platform.base}/events" and request.post_data:
                beacons.append((request.frame.name, json.loads(request.post_data)["embed_url"]))

        article.on("request", beacon)
        response = article.goto(site + "/article.html")
        assert response is not None and response.ok
        players = [article.frame(name=name) for name in ("snippet", "bare")]
        for player in players:
            assert player is not None
            wait_until(player, PLAYER_READY)
            play(player)
        for player in players:
            assert player is not None
            wait_until(player, "viewstatsPlayer.sent.some(s => s.event === 'watch' && "
                               "s.result === 202)", 20)

    # What each frame's player sent: the whole page with the snippet, its origin without.
    assert set(beacons) == {("snippet", f"{site}/article.html"), ("bare", f"{site}/")}
    hosts = {row["host"]: row["views"] for row in platform.api("hosts")}
    assert hosts["localhost"] == 2
    assert "127.0.0.1" not in hosts
    wait_until(dashboard, has_row("#hosts", "localhost", 2), 15)
    assert table(dashboard, "#hosts") == [[row["host"] or "(no host)", str(row["views"])]
                                          for row in platform.api("hosts")]
    screenshot(article, "embedded-player.png")
