"""The player's event timing, in headless Chromium playing the real HLS test stream.

The page is served by `player_routes` with a recording collector in place of `POST /events`,
over uvicorn on 127.0.0.1, so each test sees exactly which beacons arrived. Playback is real:
the browser's clock, buffering and seeking are what the player has to get right.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, Route
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.browser import open_player, play, seek_to_end, state, wait_until
from viewstats.player.routes import media_routes, player_routes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STREAM = "/media/test/index.m3u8"
# Time budget (s): 5 s of playback plus start-up, stalls and retry back-off.
WATCH_TIMEOUT = 20.0


class RecordingCollector:
    """Stands in for `POST /events`: records each beacon and answers 202, or a scripted status."""

    def __init__(self) -> None:
        self.beacons: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.failures: dict[str, list[int]] = {}  # event -> statuses to answer first

    async def post(self, request: Request) -> JSONResponse:
        beacon = json.loads(await request.body())
        self.beacons.append(beacon)
        self.paths.append(request.url.path)
        pending = self.failures.get(beacon["event"])
        status = pending.pop(0) if pending else 202
        return JSONResponse({"accepted": int(status == 202)}, status)

    def events(self, event: str | None = None) -> list[tuple[str, str]]:
        return [(b["event"], b["view_id"]) for b in self.beacons
                if event is None or b["event"] == event]


class SlowPaths:
    """Delays the answer to some paths, to make the player stall for real."""

    def __init__(self, app: ASGIApp, delays: dict[str, float]) -> None:
        self.app = app
        self.delays = delays

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (delay := self.delays.get(scope["path"])):
            await asyncio.sleep(delay)
        await self.app(scope, receive, send)


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Site:
    def __init__(self, base: str, collector: RecordingCollector, delays: dict[str, float]):
        self.base = base
        self.collector = collector
        self.delays = delays

    def player_url(self, client_id: int = 17, video_id: str = "v-1", query: str = "") -> str:
        return (f"{self.base}/player/{client_id}/{quote(video_id, safe='')}"
                f"?src={self.base}{STREAM}&type=vod{query}")


@pytest.fixture
def site(player_assets: Path, hls_media: Path) -> Iterator[Site]:
    collector = RecordingCollector()
    delays: dict[str, float] = {}
    routes = [*player_routes(player_assets), *media_routes(hls_media),
              HttpRoute("/events", collector.post, methods=["POST"]),
              HttpRoute("/elsewhere/events", collector.post, methods=["POST"])]
    with serve_in_thread(SlowPaths(Starlette(routes=routes), delays)) as base:
        yield Site(base, collector, delays)


@pytest.fixture
def errors(page: Page) -> list[str]:
    """Console errors of the page (a CSP violation or a player failure shows up here)."""
    seen: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append(message.text)

    page.on("console", keep)
    return seen


def wait_for_beacons(collector: RecordingCollector, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(collector.beacons) < count:
        assert time.monotonic() < deadline, f"beacons so far: {collector.beacons}"
        time.sleep(0.05)


def test_watch_is_sent_once_after_5_s_played_and_a_replay_is_a_new_view(
        page: Page, site: Site, errors: list[str]) -> None:
    open_player(page, site.player_url())
    play(page)
    started = time.monotonic()
    wait_until(page, "viewstatsPlayer.watchSent", WATCH_TIMEOUT)
    assert time.monotonic() - started >= 4.9
    first = state(page)
    assert 5.0 <= first["watchedSeconds"] < 6.0  # sent at the first sample past 5 s
    # Skipping to the end is not watching; ending closes the session.
    seek_to_end(page)
    wait_until(page, "viewstatsPlayer.ended")
    assert state(page)["watchedSeconds"] < first["watchedSeconds"] + 1.0  # not the ~6 s skipped
    play(page)
    wait_until(page, "viewstatsPlayer.watchSent", WATCH_TIMEOUT)
    second = state(page)
    assert second["viewId"] != first["viewId"]
    wait_for_beacons(site.collector, 5)
    v1, v2 = first["viewId"], second["viewId"]
    assert sorted(site.collector.events()) == sorted(
        [("init", v1), ("start", v1), ("watch", v1), ("start", v2), ("watch", v2)])
    assert errors == []


def test_paused_time_and_a_seek_ahead_do_not_count(page: Page, site: Site) -> None:
    open_player(page, site.player_url())
    play(page)
    wait_until(page, "viewstatsPlayer.watchedSeconds >= 2", WATCH_TIMEOUT)
    page.evaluate("document.getElementById('video').pause()")
    time.sleep(3.5)  # paused long enough to reach 5 s if wall time counted
    paused = state(page)
    assert 2.0 <= paused["watchedSeconds"] < 3.0
    assert not paused["watchSent"]
    page.evaluate("document.getElementById('video').currentTime = 6")  # 3.5+ s ahead
    play(page)
    wait_until(page, "viewstatsPlayer.watchSent", WATCH_TIMEOUT)
    done = state(page)
    # From 6 s on, the rest of the 5 s had to be played: the skipped span gave nothing.
    assert done["position"] >= 6 + (5 - paused["watchedSeconds"]) - 0.1
    wait_for_beacons(site.collector, 3)
    assert [e for e, _ in site.collector.events()] == ["init", "start", "watch"]


def test_stalled_playback_does_not_count(page: Page, site: Site) -> None:
    # The second segment (2-4 s) arrives 5 s late, so playback stalls at about 2 s.
    site.delays["/media/test/seg001.m4s"] = 5.0
    open_player(page, site.player_url())
    page.evaluate("window.stalls = 0; document.getElementById('video')"
                  ".addEventListener('waiting', () => { window.stalls += 1; })")
    play(page)
    started = time.monotonic()
    wait_until(page, "viewstatsPlayer.watchSent", WATCH_TIMEOUT)
    assert page.evaluate("window.stalls") >= 1
    assert time.monotonic() - started >= 6.5  # 5 s played + the stall
    assert state(page)["position"] >= 4.9


def test_a_failed_send_is_resent_with_the_same_view_id(page: Page, site: Site) -> None:
    site.collector.failures["watch"] = [503]  # "events could not be stored, retry"
    dropped: list[str] = []

    def drop_first_watch(route: Route) -> None:
        if '"watch"' in (route.request.post_data or "") and not dropped:
            dropped.append(route.request.url)
            route.abort("connectionreset")  # a network error: nothing reached the collector
        else:
            route.continue_()

    page.route("**/events", drop_first_watch)
    open_player(page, site.player_url())
    play(page)
    wait_until(page, "viewstatsPlayer.sent.some(s => s.event === 'watch' && s.result === 202)",
               WATCH_TIMEOUT)
    player = state(page)
    watches = [s for s in player["sent"] if s["event"] == "watch"]
    assert [s["result"] for s in watches] == ["network-error", 503, 202]
    assert {s["view_id"] for s in watches} == {player["viewId"]}
    # The collector saw the 503'd copy and the accepted one: the same event, the same view.
    assert site.collector.events("watch") == [("watch", player["viewId"])] * 2
    assert site.collector.beacons[-1] == site.collector.beacons[-2]


def test_ids_come_from_the_page_address_and_dbip_is_credited(page: Page, site: Site) -> None:
    video_id = 'v <b>"&1'
    open_player(page, site.player_url(42, video_id, "&collector=/elsewhere/events")
                .replace("type=vod", "type=live"))
    wait_for_beacons(site.collector, 1)
    (init,) = site.collector.beacons
    # Not framed: no embedding page, so the view counts under "" (embed_url).
    assert init == {"event": "init", "client_id": 42, "video_id": video_id, "type": "live",
                    "view_id": state(page)["viewId"], "embed_url": ""}
    assert site.collector.paths == ["/elsewhere/events"]
    assert page.locator("b").count() == 0  # the id was data, never markup
    credit = page.locator("a[href='https://db-ip.com']")
    assert credit.inner_text() == "IP Geolocation by DB-IP"


def test_a_page_without_a_stream_says_so_and_sends_nothing(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/player/17/v-1")
    assert "no stream" in page.locator("#status").inner_text()
    time.sleep(0.5)
    assert site.collector.beacons == []
