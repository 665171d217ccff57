"""`viewstats demo` against the real platform, with the real DB-IP databases from setup: its
views by country, and by browser, system, region and embedding page (the City database gives
the regions)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.api import COUNTRIES
from tests.support.assets import asset_cache
from tests.support.processes import serving
from viewstats.demo import country_ips, run_demo
from viewstats.demo.audience import PAGES
from viewstats.ingest.collector.geoip import CountryResolver


@pytest.fixture
def dbip(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = asset_cache() / "geoip" / "dbip-country.mmdb"  # as `viewstats setup` fetches it
    monkeypatch.setenv("GEOIP_DB", str(path))
    return path


def test_viewer_addresses_are_public_and_in_the_country_they_stand_for(dbip: Path) -> None:
    ips = country_ips(dbip)
    assert len(ips) == 30
    with CountryResolver(dbip) as resolver:
        for code, addresses in ips.items():
            for address in addresses:
                assert ipaddress.ip_address(address).is_global
                assert resolver.country(ipaddress.ip_address(address)) == code


@pytest.fixture
def dbip_city(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = asset_cache() / "geoip"  # the directory: its City files win (regions)
    monkeypatch.setenv("GEOIP_DB", str(path))
    return path


def _table(out: str) -> dict[str, int]:
    return {code: int(views) for views, code in re.findall(r"^ +(\d+)  ([A-Z]{2})  ", out, re.M)}


@pytest.mark.chdb
@pytest.mark.slow
def test_the_demo_shows_the_views_its_players_made(
        dbip_city: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with serving("run", data, {"GEOIP_DB": str(dbip_city)}) as (base, _):
        assert run_demo(base, data, 60) == 0
        out, err = capsys.readouterr()
        dashboard = re.search(r"^dashboard: (\S+)$", out, re.M)
        assert dashboard is not None, out
        # The link opens the dashboard at / on the table's window, with a key that still works.
        link = urlsplit(dashboard.group(1))
        assert f"{link.scheme}://{link.netloc}" == base and link.path == "/" and not link.query
        fragment = {name: values[0] for name, values in parse_qs(link.fragment).items()}
        assert set(fragment) == {"key", "date_from", "date_to"}
        answer = httpx.get(base + COUNTRIES, headers={"Authorization": f"apikey {fragment['key']}"},
                           params={"date_from": fragment["date_from"],
                                   "date_to": fragment["date_to"]})
        assert answer.status_code == 200, answer.text
        assert httpx.get(base + "/").status_code == 200
        audience = _audience(base, fragment)
    views = _table(out)
    assert {row["country"]: row["views"] for row in answer.json()["data"]} == views
    assert len(views) >= 5
    assert re.search(rf"^ +{sum(views.values())}  total$", out, re.M)
    assert re.search(rf"^{sum(views.values())} of 60 players watched 5 s", out, re.M)
    assert f"player: {base}/player/17/demo?src={base}/media/test/index.m3u8&type=vod" in out
    assert "IP geolocation by DB-IP (https://db-ip.com)" in out
    assert "players [##############################] 60/60" in err
    assert re.search(r"dashboard link's key stays valid; `viewstats keys revoke \d+`", err)

    # Every panel of the dashboard has something to show, and the same views in total.
    total = sum(views.values())
    for endpoint in ("browsers", "systems", "regions", "embeds", "hosts"):
        assert sum(row["views"] for row in audience[endpoint]) == total, endpoint
    assert len(audience["browsers"]) > 3
    assert len(audience["systems"]) > 3
    assert {"Chrome", "Mobile Safari", "Googlebot"} <= {r["browser"] for r in audience["browsers"]}
    regions = [row for row in audience["regions"] if row["region"]]
    assert len(regions) >= 5 and all(row["region_name"] for row in regions)
    assert {row["region"][:2] for row in regions} <= set(views)
    pages = {page.url.split("?")[0] for page, _ in PAGES}
    embeds = {row["embed_url"] for row in audience["embeds"]}
    assert embeds <= pages and len(embeds) >= 4
    assert "https://shop.example.net/products/trail-camera" in embeds  # its query dropped
    assert {"news.example.com", "shop.example.net"} <= {r["host"] for r in audience["hosts"]}
    # Each player has its own address: no more viewers than players, and most are seen.
    assert 30 < audience["uniqs"][0]["unique_ips"] <= 60


def _audience(base: str, fragment: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """What the audience endpoints (and hosts) answer over the demo's window."""
    found = {}
    for endpoint in ("browsers", "systems", "regions", "embeds", "hosts", "uniqs"):
        answer = httpx.get(f"{base}/streaming/statistics/{endpoint}",
                           headers={"Authorization": f"apikey {fragment['key']}"},
                           params={"date_from": fragment["date_from"],
                                   "date_to": fragment["date_to"]})
        assert answer.status_code == 200, answer.text
        found[endpoint] = answer.json()["data"]
    return found


@pytest.mark.chdb
@pytest.mark.slow
def test_the_demo_starts_and_stops_its_own_platform(
        dbip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert run_demo(None, data, 20) == 0
    out, err = capsys.readouterr()
    assert "starting `viewstats run" in err
    assert sum(_table(out).values()) > 0
    assert (data / "media" / "test" / "index.m3u8").is_file()  # for the player it points to
    # Stopped: the data dir can be opened by the next owner.
    with serving("run", data, {"GEOIP_DB": str(dbip)}):
        pass
