"""The dashboard's routes and files, without a browser: what `/` serves, under which policy, and
the table that joins the world atlas to the API's country codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.assets import asset_cache
from tests.support.processes import serving, viewstats
from viewstats.core.settings import DASHBOARD_ASSETS_DIR
from viewstats.query_api.dashboard import STATIC_DIR, dashboard_routes


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "uPlot.iife.min.js").write_text("/* uPlot */")
    return TestClient(Starlette(routes=dashboard_routes(tmp_path)))


def test_the_page_is_static_and_allows_only_its_own_origin(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == (STATIC_DIR / "dashboard.html").read_bytes()  # no key, no data
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/", params={"key": "1$x"}).content == page.content


def test_its_scripts_and_the_libraries_from_setup_are_served(client: TestClient) -> None:
    html = (STATIC_DIR / "dashboard.html").read_text()
    for name in ("dashboard.js", "dash-state.js", "dash-api.js", "dash-map.js", "dash-chart.js",
                 "dash-regions.js", "dash-tables.js", "dash-window.js", "dashboard.css",
                 "country-codes.json"):
        assert client.get(f"/dashboard/static/{name}").status_code == 200, name
    assert client.get("/dashboard/static/vendor/uPlot.iife.min.js").text == "/* uPlot */"
    # Every library the page loads comes from the platform; a missing one is a 404, not a 500.
    assert "https://" not in html.replace('href="https://db-ip.com"', "")
    assert client.get("/dashboard/static/vendor/d3-geo.min.js").status_code == 404


def test_every_country_of_the_atlas_has_the_apis_code() -> None:
    atlas = json.loads((asset_cache() / DASHBOARD_ASSETS_DIR / "countries-110m.json").read_text())
    codes = json.loads((STATIC_DIR / "country-codes.json").read_text())
    found = {}
    for country in atlas["objects"]["countries"]["geometries"]:
        name = country["properties"]["name"]
        found[name] = codes["numeric"].get(country.get("id")) or codes["names"].get(name)
    assert None not in found.values(), [name for name, code in found.items() if code is None]
    assert (found["United States of America"], found["New Zealand"], found["Kosovo"]) == (
        "US", "NZ", "XK")
    assert len(set(found.values())) >= len(found) - 2  # N. Cyprus and Somaliland share a code


@pytest.mark.chdb
@pytest.mark.slow
def test_viewstats_api_serves_the_dashboard_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    viewstats("migrate", "--data-dir", str(data))
    with serving("api", data, {"VIEWSTATS_CACHE_DIR": str(asset_cache())}) as (base, _):
        assert httpx.get(base + "/").status_code == 200
        library = httpx.get(base + "/dashboard/static/vendor/d3-geo.min.js")
        assert library.status_code == 200
        assert library.content == (asset_cache() / DASHBOARD_ASSETS_DIR / "d3-geo.min.js") \
            .read_bytes()
