"""Who the simulated viewers are besides where: the browser they use (a real User-Agent header)
and the customer page they watch on, each drawn from a weighted mix, so that the dashboard's
browser, system, embed and host panels have something to show (architecture §18).

Most pages frame the built-in player, as README's snippet does: its beacons come from the
player's own page, which names the framing page in `embed_url`. One site runs its own player,
whose beacons come straight from the customer's page, so the collector takes the page from their
Origin and Referer; that Referer carries a query string, which the collector drops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import urlsplit

# Real headers (ua-parser names them as the comment says), weighted roughly as web video traffic
# comes: desktop Chrome first, then phones.
AGENTS: tuple[tuple[str, int], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", 30),  # Chrome, Windows, desktop
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", 20),  # Chrome Mobile, Android, mobile
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1", 16),  # Mobile Safari, iOS, mobile
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Safari/605.1.15", 9),  # Safari, Mac OS X, desktop
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", 8),  # Edge, Windows, desktop
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     6),  # Firefox, Linux, desktop
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1", 5),  # Mobile Safari, iOS, tablet
    ("Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "76.0.3809.146/6.0 TV Safari/537.36", 4),  # Safari, Tizen, tv
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     2),  # Googlebot, bot
)


@dataclass(frozen=True)
class Page:
    url: str  # as the viewer's address bar has it
    own_player: bool  # the site's own player sends beacons from this page, not the built-in one

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


# Customer sites on reserved names (RFC 2606), with the pages their viewers watch on.
PAGES: tuple[tuple[Page, int], ...] = (
    (Page("https://news.example.com/world/2024/05/launch-coverage", False), 30),
    (Page("https://news.example.com/sport/final-highlights", False), 15),
    (Page("https://www.example.org/blog/behind-the-scenes", False), 20),
    (Page("https://learn.example.edu/courses/video-101/lesson-3", False), 15),
    (Page("https://shop.example.net/products/trail-camera?utm_source=newsletter", True), 12),
    # The built-in player opened by itself: no page embeds it.
    (Page("", False), 8),
)


def pick_agent(rng: random.Random) -> str:
    return rng.choices([agent for agent, _ in AGENTS], [weight for _, weight in AGENTS])[0]


def pick_page(rng: random.Random) -> Page:
    return rng.choices([page for page, _ in PAGES], [weight for _, weight in PAGES])[0]

