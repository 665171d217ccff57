"""Pytest plugin and helpers for the dashboard's tests in real Chromium (tests/test_dashboard*.py):
a platform holding known events, pages that fail their test on a script error or a CSP refusal,
the dashboard's tables as text, a customer's site on another origin, and screenshots.

Known events are written into the data dir before `viewstats run` starts (the collector stamps
its own time, so history cannot come through it), each view as its init, start and watch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize

from tests.support.assets import asset_cache
from tests.support.browser import ARTIFACTS, wait_until
from tests.support.processes import key_token, serving
from viewstats.core.settings import DASHBOARD_ASSETS_DIR, PLAYER_ASSETS_DIR

DESKTOP: ViewportSize = {"width": 1366, "height": 1000}
PHONE: ViewportSize = {"width": 390, "height": 844}
STATS = "/streaming/statistics/"
NewPage = Callable[..., Page]
REFRESHED = "viewstatsDashboard.refreshes >= 1 && !viewstatsDashboard.busy"
MAP_DRAWN = "document.querySelectorAll('#map path.country').length > 100"

# Runs in its own process before the server starts (one owner per chDB path). Each row is a
# view: PlayerEvent's fields but event and view_id, ts_ms that of its init.
_WRITE_EVENTS = """
import json, sys, uuid
from pathlib import Path
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.schema.migrations import migrate
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
migrate(storage)
events = []
for row in json.loads(sys.stdin.read()):
    view = str(uuid.uuid4())
    for offset, event in enumerate(("init", "start", "watch")):
        events.append(PlayerEvent(**{**row, "ts_ms": row["ts_ms"] + offset * 1000,
                                     "event": event, "view_id": view}))
insert_events(storage, events)
storage.close()
"""


def write_views(data: Path, views: Sequence[dict[str, Any]]) -> None:
    subprocess.run([sys.executable, "-c", _WRITE_EVENTS, str(data / "clickhouse")],
                   input=json.dumps(list(views)), text=True, check=True, timeout=300)


@dataclass(frozen=True)
class Platform:
    base: str
    token: str
    date_from: str
    date_to: str

    def url(self, key: str | None = None, **extra: str) -> str:
        fragment = {"key": key or self.token, "date_from": self.date_from,
                    "date_to": self.date_to, **extra}
        return f"{self.base}/#" + "&".join(f"{k}={v}" for k, v in fragment.items())

    def api(self, endpoint: str, **params: str) -> list[dict[str, Any]]:
        response = httpx.get(self.base + STATS + endpoint, headers={
            "Authorization": f"apikey {self.token}"}, params={
            "date_from": self.date_from, "date_to": self.date_to, **params})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@contextmanager
def platform_with(data: Path, views: Sequence[dict[str, Any]], client_id: int, hls_media: Path,
                  now: datetime) -> Iterator[Platform]:
    """`viewstats run` on `data` holding `views`, with the test stream, and a key of
    `client_id`; its window is the week up to the end of `now`'s UTC day, which includes now,
    so the page refreshes itself."""
    write_views(data, views)
    shutil.copytree(hls_media, data / "media")
    cache = asset_cache()
    assert (cache / DASHBOARD_ASSETS_DIR / "countries-110m.json").is_file()
    assert (cache / PLAYER_ASSETS_DIR / "hls.min.js").is_file()
    today = now.astimezone(UTC).date()
    # The key before the start: a running server picks new keys up within 2 s, and a page
    # opened sooner would meet a 401, which the dashboard rightly does not retry.
    token = key_token(data, client_id)
    with serving("run", data, {"VIEWSTATS_CACHE_DIR": str(cache)}) as (base, _):
        yield Platform(base, token, str(today - timedelta(days=6)), str(today))


def screenshot(page: Page | Locator, name: str) -> None:
    """The whole page, or one element of it, to tests/artifacts/ (printed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    if isinstance(page, Page):
        page.screenshot(path=path, full_page=True)
    else:
        page.screenshot(path=path)
    print(f"screenshot: {path}")


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[NewPage]:
    """Pages of a given viewport and time zone, each in a fresh browser context (closed after
    the test, which fails if a script threw or the page's CSP refused anything)."""
    contexts: list[BrowserContext] = []
    faults: list[str] = []

    def make(viewport: ViewportSize, timezone: str = "UTC") -> Page:
        contexts.append(chromium.new_context(viewport=viewport, timezone_id=timezone,
                                             accept_downloads=True))
        page = contexts[-1].new_page()
        page.on("pageerror", lambda error: faults.append(f"script error: {error}"))
        page.on("console", lambda message: faults.append(message.text) if (
            "Content Security Policy" in message.text) else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert faults == []


def open_dashboard(page: Page, url: str) -> Page:
    response = page.goto(url)
    assert response is not None and response.ok
    wait_until(page, REFRESHED, 20)
    wait_until(page, MAP_DRAWN, 20)
    return page


def table(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr:not(.empty)",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))")
    return rows


def has_row(selector: str, label: str, views: int) -> str:
    """A page expression: the table has the row `label`, `views`."""
    return (f"Array.from(document.querySelectorAll('{selector} tbody tr')).some(r => "
            f"r.cells[0].textContent.trim() === '{label}' && "
            f"r.cells[1].textContent.trim() === '{views}')")


def share(views: int, total: int) -> str:
    return f"{100 * views / total:.1f}%"


def country_point(page: Page, code: str) -> tuple[float, float]:
    """A point inside the country's shape on the map, in view, where the mouse finds it."""
    point = page.evaluate("""code => {
        const el = document.querySelector(`#map path[data-code="${code}"]`);
        el.scrollIntoView({block: "center"});  // a click lower down may have scrolled it away
        const box = el.getBoundingClientRect();
        for (let y = box.top + 2; y < box.bottom; y += 3)
          for (let x = box.left + 2; x < box.right; x += 3)
            if (document.elementFromPoint(x, y) === el) return [x, y];
        return null;
    }""", code)
    assert point is not None, f"{code} has no visible point on the map"
    return point[0], point[1]


@contextmanager
def customer_site(html: str) -> Iterator[str]:
    """`html` at /article.html (with any query) on http://localhost:<port>, another origin (and
    site) than the platform's 127.0.0.1, until the block ends; its base URL."""
    body = html.encode()

    class Article(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = urlsplit(self.path).path == "/article.html"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # pytest shows what matters

    server = ThreadingHTTPServer(("127.0.0.1", 0), Article)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
