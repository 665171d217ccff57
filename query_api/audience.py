"""The audience's ranked endpoints (architecture §18), in the shapes Gcore's SDK parses:
`browsers` (browser), `systems` (os), `regions` (region, an ISO 3166-2 code, with its English
name) and `embeds` (embed_url, the page that embeds the player). What the collector could not
tell counts under "unknown" (browser, os) or "" (region, embed_url), as do views stored before
these were collected."""

from __future__ import annotations

from typing import Any

from viewstats.core.regions import region_name
from viewstats.query_api.ranked import Ranked

_NARROW = "limit (the most viewed first), or a shorter window (date_from, date_to)"


def _region(code: str) -> dict[str, Any]:
    return {"region_name": region_name(code)}


BROWSERS = Ranked("browser", "browser", None, _NARROW)
SYSTEMS = Ranked("os", "os", None, _NARROW)
REGIONS = Ranked("region", "region", None, _NARROW, _region)
# Any page can embed the player, so a tenant's pages are as many as strangers make.
EMBEDS = Ranked("embed_url", "embed_url", None, _NARROW)
