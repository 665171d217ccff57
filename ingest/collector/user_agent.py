"""A viewer's browser, operating system and platform, from the User-Agent header.

Browser and OS are ua-parser's families (the uap-core rules), resolved by its Rust accelerator,
ua-parser-rs; a missing or empty header, or one the rules do not know, is "unknown". Every value
is at most MAX_VALUE_CHARS: some rules copy part of the header into the family.

ua-parser has no device class, so the platform is decided here, by the first rule that matches:

* ``bot``: ua-parser's device family is "Spider", or the header has a crawler's or an HTTP
  library's token (``bot``/``crawler``/``spider`` ending a word, curl, Wget, python-requests,
  Go-http-client, HeadlessChrome, ...).
* ``tv``: a smart TV, streaming stick or console token (SmartTV, SMART-TV, Tizen ... TV, Web0S,
  webOS TV, AppleTV, Android TV, GoogleTV, BRAVIA, HbbTV, CrKey, Roku, AFT (Fire TV), PlayStation,
  Xbox, Nintendo), or a TV operating system (tvOS, Chromecast's).
* ``tablet``: iPad, Android without "Mobile", Tablet (but not Windows' "Tablet PC"), Kindle,
  Silk. iPadOS' Safari asks for desktop pages with a Mac's header, so it counts as desktop.
* ``mobile``: iPhone, iPod, Windows Phone, BlackBerry, or "Mobi" (Android's "Mobile").
* ``desktop``: an OS of DESKTOP_OS (Windows, Mac OS X, Chrome OS, Linux and its distributions,
  the BSDs, Solaris).
* ``unknown``: anything else.

The header is cut to MAX_UA_CHARS before parsing, so one beacon's cost and the memory the cache
holds per entry are bounded whatever a client sends; real headers are under 300 characters.
Headers repeat heavily (a few browser releases make most traffic), so the result is kept in an
LRU of CACHE_SIZE entries: a hit costs a dict lookup, and a client sending distinct headers only
evicts, it cannot grow the cache.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple

from ua_parser import Domain, Resolver, load_lazy_builtins

# Imported by name, not through ua_parser's "best available" pick: without ua-parser-rs this
# import fails at start instead of silently parsing ~10x slower in pure Python.
from ua_parser.regex import Resolver as RustResolver

from viewstats.core.events import MAX_DEVICE_NAME as MAX_VALUE_CHARS
from viewstats.core.events import UNKNOWN

MAX_UA_CHARS: Final = 512
CACHE_SIZE: Final = 4096

DESKTOP_OS: Final = frozenset({
    "Windows", "Mac OS X", "Mac OS", "Chrome OS", "Linux", "Ubuntu", "Kubuntu", "Xubuntu",
    "Debian", "Fedora", "Red Hat", "CentOS", "Gentoo", "Mint", "Linux Mint", "Arch Linux",
    "SUSE", "openSUSE", "Slackware", "FreeBSD", "OpenBSD", "NetBSD", "Solaris"})
_TV_OS: Final = frozenset({"tvOS", "ATV OS X", "FireHbbTV"})

_BOT = re.compile(
    r"(?:bot|crawler|spider)\b|slurp|curl/|wget/|python-requests|python-urllib|aiohttp|"
    r"go-http-client|libwww-perl|java/|apache-httpclient|headlesschrome|phantomjs|"
    r"facebookexternalhit|lighthouse|pingdom", re.IGNORECASE)
_TV = re.compile(
    r"smart-?tv|tizen.{0,40}\btv\b|web0s|webos.?tv|apple ?tv|android ?tv|googletv|bravia|"
    r"hbbtv|crkey|roku|\baft[a-z]|playstation|xbox|nintendo", re.IGNORECASE)
_TABLET = re.compile(r"ipad|tablet(?! pc)|kindle|silk", re.IGNORECASE)
_MOBILE = re.compile(r"iphone|ipod|windows phone|blackberry|bb10|mobi", re.IGNORECASE)

RESOLVER: Final[Resolver] = RustResolver(load_lazy_builtins())


class Device(NamedTuple):
    browser: str
    os: str
    platform: str


_NOTHING: Final = Device(UNKNOWN, UNKNOWN, UNKNOWN)


def device(user_agent: str | None) -> Device:
    """The viewer's browser, OS and platform; "unknown" for whatever cannot be told."""
    if not user_agent:
        return _NOTHING
    # Cut before the cache: its keys are then bounded too.
    return _cached(user_agent[:MAX_UA_CHARS])


@lru_cache(maxsize=CACHE_SIZE)
def _cached(user_agent: str) -> Device:
    return parse_device(user_agent, RESOLVER)


def parse_device(user_agent: str, resolver: Resolver) -> Device:
    """`device` without the cache or the cut, on any resolver (the benchmark compares them)."""
    parsed = resolver(user_agent, Domain.ALL)
    browser = _family(parsed.user_agent.family if parsed.user_agent else None)
    os = _family(parsed.os.family if parsed.os else None)
    spider = parsed.device is not None and parsed.device.family == "Spider"
    return Device(browser, os, _platform(user_agent, os, spider))


def _family(family: str | None) -> str:
    if not family or family == "Other":
        return UNKNOWN
    return family[:MAX_VALUE_CHARS]


def _platform(user_agent: str, os: str, spider: bool) -> str:
    if spider or _BOT.search(user_agent):
        return "bot"
    if os in _TV_OS or os.startswith("Chromecast") or _TV.search(user_agent):
        return "tv"
    android = "android" in user_agent.lower()
    if _TABLET.search(user_agent) or (android and "mobile" not in user_agent.lower()):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if os in DESKTOP_OS:
        return "desktop"
    return UNKNOWN
