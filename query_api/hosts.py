"""`GET /streaming/statistics/hosts`: views per embedding host, most first, at most `limit` rows
(as `popular` takes it; without it, up to the row cap: architecture §15); views with no
embedding site, such as the player page opened by itself, count under the host "" (where the
collector takes the host from: architecture §3). Any host can embed the player, so a tenant's
hosts are as many as strangers make: no default limit but the cap."""

from __future__ import annotations

from viewstats.query_api.ranked import Ranked

HOSTS = Ranked("host", "host", None,
               "limit (the most viewed hosts first), or a shorter window (date_from, date_to)")
