"""The built-in player against the real platform: headless Chromium -> `viewstats run` -> API.

Each test starts `viewstats run` as an operator would, with a test GeoIP database that puts
127.0.0.1 (where the browser connects from) in New Zealand, hls.js as setup installs it, and the
ffmpeg test stream under <data-dir>/media.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.api import COUNTRIES
from tests.support.browser import (
    ARTIFACTS,
    open_player,
    play,
    seek_to_end,
    state,
    wait_until,
)
from tests.support.geoip_fixture import write_test_mmdb
from tests.support.processes import serving, viewstats

pytestmark = [pytest.mark.browser, pytest.mark.chdb, pytest.mark.slow]

CLIENT = 17
COUNTRY = "NZ"
# The current playback session's watch was accepted by the collector.
WATCH_ACCEPTED = ("viewstatsPlayer.sent.some(s => s.view_id === viewstatsPlayer.viewId"
                  " && s.event === 'watch' && s.result === 202)")
WATCH_TIMEOUT = 20.0

# Runs in its own process, once the server has let go of the data dir (one owner per chDB path).
_EVENTS = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
rows = storage.query("SELECT event, toString(view_id), country FROM player_events "
                     "WHERE client_id = {client:UInt32} ORDER BY ts, event",
                     {"client": int(sys.argv[2])})
print(json.dumps(rows))
storage.close()
"""


@contextmanager
def platform(tmp_path: Path, player_assets: Path, hls_media: Path) -> Iterator[tuple[str, Path]]:
    """`viewstats run` on a fresh data dir: (base URL, data dir)."""
    data = tmp_path / "data"
    shutil.copytree(player_assets, data / "player-assets")
    shutil.copytree(hls_media, data / "media")
    geoip = write_test_mmdb(tmp_path / "geo.mmdb", {"127.0.0.1/32": COUNTRY}, "dbip")
    with serving("run", data, {"GEOIP_DB": str(geoip)}) as (base, _):
        yield base, data


def api_token(data: Path, client_id: int = CLIENT) -> str:
    created = viewstats("keys", "create", "--client-id", str(client_id), "--data-dir", str(data))
    return created.stdout.strip().splitlines()[-1]


def views(base: str, token: str) -> dict[str, int]:
    today = datetime.now(UTC).date()
    params = {"date_from": str(today - timedelta(days=1)), "date_to": str(today + timedelta(1))}
    headers = {"Authorization": f"apikey {token}"}
    deadline = time.monotonic() + 5  # a new key is picked up within 2 s
    while (response := httpx.get(base + COUNTRIES, params=params, headers=headers)) \
            .status_code == 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status_code == 200, response.text
    return {row["country"]: row["views"] for row in response.json()["data"]}


def stored_events(data: Path, client_id: int = CLIENT) -> list[tuple[str, str, str]]:
    out = subprocess.run([sys.executable, "-c", _EVENTS, str(data / "clickhouse"),
                          str(client_id)], capture_output=True, text=True, check=True, timeout=120)
    return [tuple(row) for row in json.loads(out.stdout.strip().splitlines()[-1])]


def player_url(base: str, video_id: str = "v-e2e") -> str:
    return f"{base}/player/{CLIENT}/{video_id}?src={base}/media/test/index.m3u8&type=vod"


def test_watching_past_5_s_counts_one_view_in_the_viewers_country(
        page: Page, tmp_path: Path, player_assets: Path, hls_media: Path) -> None:
    with platform(tmp_path, player_assets, hls_media) as (base, data):
        token = api_token(data)
        open_player(page, player_url(base))
        play(page)
        wait_until(page, WATCH_ACCEPTED, WATCH_TIMEOUT)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "player.png")
        sent = state(page)["sent"]
        assert [(s["event"], s["result"]) for s in sent] == [
            ("init", 202), ("start", 202), ("watch", 202)]
        assert views(base, token) == {COUNTRY: 1}


def test_stopping_before_5_s_counts_no_view_but_records_the_start(
        page: Page, tmp_path: Path, player_assets: Path, hls_media: Path) -> None:
    with platform(tmp_path, player_assets, hls_media) as (base, data):
        token = api_token(data)
        open_player(page, player_url(base))
        play(page)
        wait_until(page, "viewstatsPlayer.watchedSeconds >= 2", WATCH_TIMEOUT)
        page.evaluate("document.getElementById('video').pause()")
        time.sleep(4)  # past 5 s since play: only playing counts
        player = state(page)
        assert not player["watchSent"]
        assert [(s["event"], s["result"]) for s in player["sent"]] == [
            ("init", 202), ("start", 202)]
        assert views(base, token) == {}
    view_id = player["viewId"]
    assert stored_events(data) == [("init", view_id, COUNTRY), ("start", view_id, COUNTRY)]


def test_two_playbacks_count_two_views(
        page: Page, tmp_path: Path, player_assets: Path, hls_media: Path) -> None:
    with platform(tmp_path, player_assets, hls_media) as (base, data):
        token = api_token(data)
        open_player(page, player_url(base))
        play(page)
        wait_until(page, WATCH_ACCEPTED, WATCH_TIMEOUT)
        first = state(page)["viewId"]
        # To the end, and play again: a replay is a new playback session, so a new view.
        seek_to_end(page)
        wait_until(page, "viewstatsPlayer.ended")
        play(page)
        wait_until(page, f"viewstatsPlayer.viewId !== '{first}' && {WATCH_ACCEPTED}",
                   WATCH_TIMEOUT)
        assert views(base, token) == {COUNTRY: 2}
