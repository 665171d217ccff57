"""`GET /streaming/statistics/popular`: views per video id, most viewed first, at most `limit`
rows (default 100, at most 1000; architecture §15), and never more than the row cap."""

from __future__ import annotations

from viewstats.query_api.filters import DEFAULT_LIMIT
from viewstats.query_api.ranked import Ranked

POPULAR = Ranked("id", "id", DEFAULT_LIMIT, "a smaller limit")
