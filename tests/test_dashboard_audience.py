"""The dashboard's audience panels in real Chromium (architecture §18): unique viewers, the
region table and its drill-down from the map, browsers, systems and embedding pages, each
checked against the known events and against what the public API answers for the same window;
and a player framed by a page on another origin, whose address with a query and a fragment
reaches `embeds` and the page as the page's URL alone. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request

from tests.support.browser import PLAYER_READY, play, wait_until
from tests.support.dashboard import (
    DESKTOP,
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

CLIENT = 21
# Views by country and region ("" where the database knows none).
REGIONS = {"US": ("US-CA", "US-NY", "US-CA", "US-TX", "", "US-CA"),
           "DE": ("DE-BY", "DE-BE", "DE-BY"), "JP": ("JP-13", "JP-27"), "BR": ("BR-SP",)}
DEVICES = (("Chrome", "Windows", "desktop"), ("Mobile Safari", "iOS", "mobile"),
           ("Firefox", "Linux", "desktop"), ("Chrome Mobile", "Android", "mobile"),
           ("Chrome", "Mac OS X", "desktop"), ("Edge", "Windows", "desktop"))
PAGES = ("https://news.example.com/world/launch", "https://blog.example.org/posts/keynote",
         "https://news.example.com/sport/final", "")
VIEWERS = 7  # distinct viewer keys among the views: some watch more than once
REGIONS_TIMEOUT = 10.0


def known_views(now: datetime) -> list[dict[str, Any]]:
    now_ms = int(now.timestamp() * 1000)
    places = [(country, region) for country, regions in REGIONS.items() for region in regions]
    views = []
    for i, (country, region) in enumerate(places):
        browser, os, platform = DEVICES[(i * 5) % len(DEVICES)]
        views.append({"client_id": CLIENT, "ts_ms": now_ms - ((i * 19) % 120 + 1) * 3_600_000,
                      "type": "vod", "video_id": "v-audience", "country": country,
                      "host": "", "region": region, "browser": browser, "os": os,
                      "platform": platform, "embed_url": PAGES[i % len(PAGES)],
                      "viewer": 1 + i % VIEWERS})
    return views


NOW = datetime.now(UTC)
KNOWN = known_views(NOW)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, hls_media: Path) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("audience") / "data"
    with platform_with(data, KNOWN, CLIENT, hls_media, NOW) as running:
        yield running


def known(field: str) -> Counter[str]:
    return Counter(view[field] for view in KNOWN)


def region_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The region table as the page should show the API's rows."""
    total = sum(row["views"] for row in rows)
    return [[row["region_name"] or "(unknown region)", row["region"], str(row["views"]),
             share(row["views"], total)] for row in rows]


def regions_shown(page: Page, country: str) -> None:
    wait_until(page, f"document.getElementById('regions').dataset.country === '{country}' && "
                     "!viewstatsDashboard.busy", REGIONS_TIMEOUT)


def test_the_audience_panels_show_what_the_api_answers(
        new_page: NewPage, platform: Platform) -> None:
    page = open_dashboard(new_page(DESKTOP), platform.url())
    regions_shown(page, "")

    # Unique viewers, in all and per UTC day (every event is a watch here).
    uniques = platform.api("uniqs")
    assert [row["unique_ips"] for row in uniques] == [VIEWERS]
    assert page.inner_text("#kpi-uniques") == str(VIEWERS)
    per_day = platform.api("uniqs", group="date")
    days: dict[str, set[int]] = {}
    for view in KNOWN:
        day = datetime.fromtimestamp(view["ts_ms"] / 1000, UTC).date().isoformat()
        days.setdefault(day, set()).add(view["viewer"])
    assert {row["date"]: row["unique_ips"] for row in per_day} == {
        day: len(viewers) for day, viewers in days.items()}
    assert table(page, "#uniques-series") == [[row["date"], str(row["unique_ips"])]
                                              for row in sorted(per_day, key=lambda r: r["date"])]
    assert page.locator("#uniques-chart canvas").count() == 1

    # Regions of every country, named.
    regions = platform.api("regions", limit="100")
    assert {row["region"]: row["views"] for row in regions} == known("region")
    assert table(page, "#regions") == region_rows(regions)
    assert ["California", "US-CA", "3", share(3, len(KNOWN))] in table(page, "#regions")
    assert page.inner_text("#regions-title") == "Regions"

    # Browsers, systems and pages as bar lists, most viewed first.
    for selector, endpoint, field, unknown in (("#browsers", "browsers", "browser", ""),
                                               ("#systems", "systems", "os", ""),
                                               ("#embeds", "embeds", "embed_url", "(no page)")):
        rows = platform.api(endpoint, limit="10")
        assert {row[field]: row["views"] for row in rows} == known(field), endpoint
        assert table(page, selector) == [[row[field] or unknown, str(row["views"])]
                                         for row in rows], endpoint
        bars = page.eval_on_selector_all(f"{selector} tbody .bar > span",
                                         "spans => spans.map(s => s.style.width)")
        assert bars[0] == "100%" and len(bars) == len(rows), endpoint
    screenshot(page, "dashboard-audience.png")
    screenshot(page.locator(".kpis"), "dashboard-kpis.png")


def test_a_country_clicked_on_the_map_shows_its_regions(
        new_page: NewPage, platform: Platform) -> None:
    page = open_dashboard(new_page(DESKTOP), platform.url())
    page.mouse.click(*country_point(page, "US"))
    regions_shown(page, "US")
    us = platform.api("regions", country="US", limit="100")
    assert {row["region"]: row["views"] for row in us} == Counter(REGIONS["US"])
    assert table(page, "#regions") == region_rows(us)
    assert page.inner_text("#regions-title") == "Regions of United States"
    assert "regions=US" in page.url
    assert page.eval_on_selector_all("#map path.selected", "els => els.map(e => e.dataset.code)"
                                     ) == ["US"]
    screenshot(page.locator(".regions-card"), "dashboard-regions-us.png")

    # A row of the country table does the same; "All countries" goes back.
    page.click("#countries tbody tr[data-code=DE]")
    regions_shown(page, "DE")
    assert table(page, "#regions") == region_rows(platform.api("regions", country="DE",
                                                               limit="100"))
    assert page.inner_text("#regions-title") == "Regions of Germany"
    page.click("#regions-all")
    regions_shown(page, "")
    assert page.is_hidden("#regions-all")
    assert table(page, "#regions") == region_rows(platform.api("regions", limit="100"))
    assert page.eval_on_selector_all("#map path.selected", "els => els.length") == 0

    # The selection is in the address: a reload, or a shared link, shows the same regions.
    shared = open_dashboard(new_page(DESKTOP), platform.url(regions="JP"))
    regions_shown(shared, "JP")
    assert table(shared, "#regions") == region_rows(platform.api("regions", country="JP",
                                                                 limit="100"))


# A customer's page framing the player as the README's snippet does, so that the player is
# given the page's whole address. `{player}` is the player's URL without its video id.
ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An article</title></head>
<body>
<h1>An article on a customer's site</h1>
<iframe name="snippet" src="{player}/v-embed-page?src={media}&type=vod"
        referrerpolicy="no-referrer-when-downgrade" allow="autoplay; fullscreen" allowfullscreen
        width="640" height="360"></iframe>
</body></html>
"""


def test_a_framed_player_names_its_page_without_query_or_fragment(
        new_page: NewPage, platform: Platform) -> None:
    dashboard = open_dashboard(new_page(DESKTOP), platform.url())
    html = ARTICLE.format(player=f"{platform.base}/player/{CLIENT}",
                          media=f"{platform.base}/media/test/index.m3u8")
    with customer_site(html) as site:
        article = new_page(DESKTOP)
        beacons: list[str] = []

        def beacon(request: Request) -> None:
            if request.url == f"{platform.base}/events" and request.post_data:
                beacons.append(json.loads(request.post_data)["embed_url"])

        article.on("request", beacon)
        response = article.goto(f"{site}/article.html?q=secret#frag")
        assert response is not None and response.ok
        player = article.frame(name="snippet")
        assert player is not None
        wait_until(player, PLAYER_READY)
        play(player)
        wait_until(player, "viewstatsPlayer.sent.some(s => s.event === 'watch' && "
                           "s.result === 202)", 20)

    page = f"{site}/article.html"
    assert set(beacons) == {page}
    embeds = platform.api("embeds", limit="10")
    assert {"embed_url": page, "views": 1} in embeds
    assert not [row for row in embeds if "secret" in row["embed_url"] or "#" in row["embed_url"]]
    # The dashboard, open all along, shows it at its next refresh, as the API does.
    wait_until(dashboard, has_row("#embeds", page, 1), 15)
    assert table(dashboard, "#embeds") == [[row["embed_url"] or "(no page)", str(row["views"])]
                                           for row in platform.api("embeds", limit="10")]
    screenshot(dashboard.locator("#embeds").locator(".."), "dashboard-embeds.png")
