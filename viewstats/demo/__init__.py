"""`viewstats demo`: simulated players from many countries, then the country table and a link
to the dashboard on the same window, its key in the link's fragment (architecture §8).

Each simulated player is one playback session: `init` and `start`, and for most a `watch`, sent
to `POST /events` like the real player's beacons. The viewer's address is a real public IPv4
address from a country of the DB-IP database, passed in `X-Forwarded-For`; the demo talks to the
platform over loopback, which `TRUSTED_PROXIES` trusts by default, so the collector believes it.
Some players resend their `watch` as after a network error, and are still counted once.

The table is read back through the public API over exactly the demo's time window, so it shows
this run's views only, and is checked against what the players sent. The demo's key stays valid
afterwards, since the printed dashboard link carries it (`viewstats keys revoke` ends it).
"""

from viewstats.demo.run import run_demo
from viewstats.demo.viewers import country_ips

__all__ = ["country_ips", "run_demo"]
