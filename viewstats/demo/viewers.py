"""The simulated players: viewer addresses from the GeoIP database, their browsers and pages
(demo/audience.py), and their beacons."""

from __future__ import annotations

import ipaddress
import json
import random
import sys
import threading
import time
import urllib.error
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from viewstats.demo.audience import Page, pick_agent, pick_page
from viewstats.demo.web import DemoError, open_url
from viewstats.ingest.collector.geoip import CountryResolver

VIDEO_ID = "demo"
COUNTRIES = 30  # the most address-rich countries of the database take part
WATCH_SHARE = 0.8  # players who stay 5 s
RESEND_SHARE = 0.05  # watchers whose watch is sent twice, as after a lost answer
# Players sending at once: the embedded writer holds a beacon up to a second (EMBEDDED_LINGER_MS)
# for company, so 500 players' ~1,500 beacons take ~25 rounds of it, not ~190.
WORKERS = 64
SEND_ATTEMPTS = 3


def country_ips(geoip: Path, countries: int = COUNTRIES) -> dict[str, list[str]]:
    """Real public IPv4 addresses of the `countries` countries holding most of the samples.

    The IPv4 space is sampled on a fixed grid (a few thousand addresses) and each address is
    looked up in the database, so the countries and their weight come from the real data.
    """
    found: dict[str, list[str]] = {}
    with CountryResolver(geoip) as resolver:
        for first in range(1, 224):
            for second in range(0, 256, 4):
                ip = ipaddress.IPv4Address(f"{first}.{second}.{(first * 7 + second) % 256}."
                                           f"{(first + second) % 250 + 1}")
                if ip.is_global and (code := resolver.country(ip)) != "ZZ":
                    found.setdefault(code, []).append(str(ip))
    biggest = sorted(found, key=lambda code: (-len(found[code]), code))[:countries]
    if not biggest:
        raise DemoError(f"{geoip} knows no country of any sampled public address")
    return {code: found[code] for code in biggest}


@dataclass(frozen=True)
class Viewer:
    ip: str  # a public address of the viewer's country, sent in X-Forwarded-For
    agent: str  # User-Agent header
    page: Page  # where the viewer watches


@dataclass
class Outcome:
    watched: Counter[str] = field(default_factory=Counter)  # country -> views counted
    resent: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Viewers:
    """Players of one video of one client, sending beacons to `events_url` from `player_url`."""

    events_url: str
    player_url: str
    client_id: int

    def simulate(self, ips: dict[str, list[str]], players: int, rng: random.Random) -> Outcome:
        """Send every player's events, many players at once as real viewers do, with progress."""
        codes = list(ips)
        # Address-rich countries bring more viewers, flattened so that small ones still show.
        weights = [len(ips[code]) ** 0.5 for code in codes]
        plans = []
        for _ in range(players):
            code = rng.choices(codes, weights)[0]
            watches = rng.random() < WATCH_SHARE
            plans.append((code, Viewer(rng.choice(ips[code]), pick_agent(rng), pick_page(rng)),
                          watches, watches and rng.random() < RESEND_SHARE))
        outcome = Outcome()
        lock = threading.Lock()
        progress = Progress(players)

        def play(code: str, viewer: Viewer, watches: bool, resends: bool) -> None:
            view_id = str(uuid.uuid4())
            events = ["init", "start"] + ["watch"] * (watches + resends)
            accepted = [self.send(viewer, event, view_id) for event in events]
            with lock:
                outcome.failed += accepted.count(False)
                outcome.watched[code] += any(accepted[2:])
                outcome.resent += resends
            progress.advance()

        with ThreadPoolExecutor(WORKERS) as pool:
            for done in [pool.submit(play, *plan) for plan in plans]:
                done.result()
        progress.close()
        outcome.watched = +outcome.watched  # drop countries whose players all left early
        return outcome

    def send(self, viewer: Viewer, event: str, view_id: str) -> bool:
        """One beacon as the player sends it; a network error or a 5xx is retried, as it does."""
        beacon: dict[str, object] = {"event": event, "client_id": self.client_id,
                                     "video_id": VIDEO_ID, "type": "vod", "view_id": view_id}
        headers = {"Content-Type": "text/plain;charset=UTF-8", "X-Forwarded-For": viewer.ip,
                   "User-Agent": viewer.agent}
        if viewer.page.own_player:
            # From the customer's page itself: the browser names it in Origin and Referer.
            headers |= {"Origin": viewer.page.origin, "Referer": viewer.page.url}
        else:
            # From the built-in player's page, which names the page that frames it ("" when
            # opened by itself) without query or fragment, as player.js does.
            headers["Referer"] = self.player_url
            beacon["embed_url"] = viewer.page.url.split("?", 1)[0]
        body = json.dumps(beacon).encode()
        for attempt in range(SEND_ATTEMPTS):
            try:
                with open_url(self.events_url, headers, body) as response:
                    return bool(response.status == 202)
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return False
            except OSError:
                pass
            time.sleep(0.2 * 2**attempt)
        return False


class Progress:
    """A progress bar on stderr: one line redrawn at most 10 times a second on a terminal, a
    line per tenth done otherwise (so that a log is not filled with carriage returns)."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.started = self.drawn = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self._draw()

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            if self.tty:
                due = time.monotonic() - self.drawn >= 0.1
            else:
                due = 10 * self.done // self.total > 10 * (self.done - 1) // self.total
            if due or self.done == self.total:
                self._draw()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        filled = self.WIDTH * self.done // self.total
        line = (f"  players [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{self.done}/{self.total}  {self.drawn - self.started:.1f} s")
        sys.stderr.write("\r" + line if self.tty else line + "\n")
        sys.stderr.flush()
