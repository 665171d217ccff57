"""The player's routes, its test stream and the browser tests' marker guard, without a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.browser import MARKER, REPO, USES
from tests.support.markers import missing_marker_message
from viewstats.player.routes import media_routes, player_routes
from viewstats.player.sample_stream import make_sample_stream, playlist_path

DBIP_CREDIT = "<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>"


def client(assets: Path, media: Path) -> TestClient:
    return TestClient(Starlette(routes=[*player_routes(assets), *media_routes(media)]))


@pytest.fixture
def app(tmp_path: Path) -> TestClient:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "hls.min.js").write_text("/* hls.js */")
    (tmp_path / "media" / "test").mkdir(parents=True)
    (tmp_path / "media" / "test" / "index.m3u8").write_text("#EXTM3U\n")
    return client(assets, tmp_path / "media")


def test_the_page_is_the_same_static_html_whatever_the_ids(app: TestClient) -> None:
    first = app.get("/player/17/v-1", params={"src": "x", "type": "vod"})
    other = app.get("/player/18/%3Cscript%3Ealert(1)%3C%5Cscript%3E", params={"src": "<b>"})
    assert first.status_code == other.status_code == 200
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert first.content == other.content
    assert DBIP_CREDIT in first.text
    csp = first.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe" not in csp


@pytest.mark.parametrize("path", ["/player/4294967296/v-1", "/player/x/v-1", "/player/17/"])
def test_a_page_address_without_a_client_and_a_video_is_404(app: TestClient, path: str) -> None:
    assert app.get(path).status_code == 404


def test_static_files_hls_js_and_media_are_served(app: TestClient) -> None:
    assert "viewstatsPlayer" in app.get("/player/static/player.js").text
    assert app.get("/player/static/player.css").status_code == 200
    assert app.get("/player/static/vendor/hls.min.js").text == "/* hls.js */"
    playlist = app.get("/media/test/index.m3u8")
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert app.get("/media/../player/routes.py").status_code == 404


def test_missing_setup_directories_give_404_not_500(tmp_path: Path) -> None:
    app = client(tmp_path / "no-assets", tmp_path / "no-media")
    assert app.get("/player/static/vendor/hls.min.js").status_code == 404
    assert app.get("/media/test/index.m3u8").status_code == 404
    assert app.get("/player/17/v-1").status_code == 200


def test_the_test_stream_is_made_once(tmp_path: Path) -> None:
    playlist = make_sample_stream(tmp_path)
    assert playlist == playlist_path(tmp_path)
    text = playlist.read_text()
    assert "#EXT-X-ENDLIST" in text and text.count("#EXTINF:2.0") == 6  # 12 s in 2 s segments
    made = playlist.stat().st_mtime_ns
    assert make_sample_stream(tmp_path) == playlist
    assert playlist.stat().st_mtime_ns == made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test"]  # no work dir left behind


def test_a_test_reaching_the_browser_without_the_marker_errors_before_chromium_starts(
        tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    browser: chromium\n")
    (tmp_path / "test_unmarked.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture(scope='module')\n"
        "def chromium():\n    raise AssertionError('Chromium started')\n\n"
        "def test_uses_page(page):\n    pass\n\n"
        "def test_uses_chromium(chromium):\n    pass\n\n"
        "@pytest.mark.browser\n"
        "def test_marked(chromium):\n    pass\n\n"
        "def test_without_browser():\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.browser", "-p", "no:cacheprovider",
         "-c", str(tmp_path / "pytest.ini"), "-q", "-rE"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=120, check=False)
    out = done.stdout + done.stderr
    # The marked test reaches the (stand-in) browser; the unmarked ones never get that far.
    assert "1 passed, 3 errors" in out, out
    assert "test_marked - AssertionError: Chromium started" in out, out
    for name in ("test_uses_page", "test_uses_chromium"):
        assert missing_marker_message(f"test_unmarked.py::{name}", MARKER, USES) in out, out
