"""Pytest plugin: Debian's Chromium driven by Playwright, for `@pytest.mark.browser` tests only.

Load it with `pytest_plugins = [..., "tests.support.browser"]`, then:

    @pytest.mark.browser
    def test_x(page: Page) -> None:
        page.goto(url)

The browser is the system one (`apt-get install chromium`, or `$CHROMIUM`), started through
`executable_path`: `playwright install` downloads a browser build, and nothing may be downloaded
at run time. A missing Chromium fails the test with the install command instead of skipping it,
so a CI run without it cannot look green.

Project rule: a test without the marker cannot reach the service. Any test whose fixture closure
includes `page` or `chromium` but that lacks the marker errors at setup, before Chromium starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Frame, Page, sync_playwright

from tests.support.assets import asset_cache
from tests.support.markers import require_marker
from viewstats.core.settings import PLAYER_ASSETS_DIR
from viewstats.player.sample_stream import make_sample_stream

MARKER = "browser"
GUARDED_FIXTURES = frozenset({"page", "chromium"})
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Playwright already starts headless with a fresh temporary profile; these keep Chromium from
# calling Google's services on a closed network, and let tests start playback from a script.
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


USES = "drives Chromium"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    require_marker(item, MARKER, GUARDED_FIXTURES, USES)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per test module (each test gets its own context through `page`).

    Not per session: while Playwright's sync API is started it holds an event loop on the main
    thread, and every later test calling asyncio.run() would fail.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's package "
                    "(apt-get install -y chromium) or set CHROMIUM to its binary", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no shared cookies, cache or storage)."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def player_assets() -> Path:
    """hls.js as `viewstats setup` installs it (the shared cache's player-assets/)."""
    return asset_cache() / PLAYER_ASSETS_DIR


@pytest.fixture(scope="session")
def hls_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media directory holding the HLS test stream at test/index.m3u8 (made with ffmpeg)."""
    media = tmp_path_factory.mktemp("media")
    make_sample_stream(media)
    return media


# --- driving the player page (player/static/player.js) -------------------------------------
# The helpers take the player's page, or its frame where a customer's page embeds it.

PLAYER_READY = "window.viewstatsPlayer && viewstatsPlayer.sent.length > 0"  # `init` was sent


def wait_until(page: Page | Frame, expression: str, timeout: float = 10.0) -> None:
    """Poll `expression` in the page.

    Not `page.wait_for_function`: it evaluates the string with eval, which the player's CSP
    forbids (and should), while `page.evaluate` goes through the DevTools protocol.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def open_player(page: Page, url: str) -> None:
    """Open the player page and wait for its `init` to be sent."""
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    wait_until(page, PLAYER_READY)


def play(page: Page | Frame) -> None:
    """Press play; returns once playback has begun (the promise of play() resolved)."""
    page.evaluate("document.getElementById('video').play()")


def state(page: Page) -> dict[str, Any]:
    """`window.viewstatsPlayer` and the video's position, as the player sees them now."""
    result: dict[str, Any] = page.evaluate(
        "({...viewstatsPlayer, position: document.getElementById('video').currentTime})")
    return result


def seek_to_end(page: Page) -> None:
    """Jump to 0.3 s before the end, so that the video ends almost at once."""
    page.evaluate("(v => { v.currentTime = v.duration - 0.3; })(document.getElementById('video'))")
