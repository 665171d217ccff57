"""Browser, OS and platform from real User-Agent headers (ingest/collector/user_agent.py)."""

from __future__ import annotations

import pytest
import ua_parser.basic
import ua_parser.regex
from ua_parser import load_builtins

from viewstats.core.events import MAX_DEVICE_NAME as MAX_VALUE_CHARS
from viewstats.core.events import PLATFORMS
from viewstats.ingest.collector import user_agent
from viewstats.ingest.collector.user_agent import (
    CACHE_SIZE,
    MAX_UA_CHARS,
    Device,
    device,
    parse_device,
)

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/124.0.0.0 Safari/537.36")

CASES = {
    "Chrome on Windows": (CHROME_WINDOWS, ("Chrome", "Windows", "desktop")),
    "Edge on Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", ("Edge", "Windows", "desktop")),
    "Safari on a Mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Safari/605.1.15", ("Safari", "Mac OS X", "desktop")),
    "Firefox on Linux": (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ("Firefox", "Linux", "desktop")),
    "Firefox on Ubuntu": (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        ("Firefox", "Ubuntu", "desktop")),
    "Chrome on a Chromebook": (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36", ("Chrome", "Chrome OS", "desktop")),
    "Safari on an iPhone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iOS", "mobile")),
    "Safari on an iPad": (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1", ("Mobile Safari", "iOS", "tablet")),
    "Chrome on an Android phone": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36", ("Chrome Mobile", "Android", "mobile")),
    "Chrome on an Android tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36", ("Chrome", "Android", "tablet")),
    "Samsung Internet on a phone": (
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        ("Samsung Internet", "Android", "mobile")),
    # "bot" inside a model name is not a crawler.
    "Chrome on a Cubot phone": (
        "Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36", ("Chrome Mobile", "Android", "mobile")),
    "Googlebot": (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("Googlebot", "unknown", "bot")),
    "Googlebot as a phone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)", ("Googlebot", "Android", "bot")),
    "curl": ("curl/8.5.0", ("curl", "unknown", "bot")),
    "Samsung Tizen TV": (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "76.0.3809.146/6.0 TV Safari/537.36", ("Safari", "Tizen", "tv")),
    "LG webOS TV": (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.79 Safari/537.36 WebAppManager", ("Chrome", "Web0S", "tv")),
    "Roku": ("Roku/DVP-9.10 (519.10E04111A)", ("Roku", "Roku", "tv")),
    "PlayStation 5": (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.0 Safari/605.1.15", ("Safari", "unknown", "tv")),
    "Xbox (Windows inside)": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041", ("Edge", "Windows", "tv")),
    "Chromecast": (
        "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/81.0.4044.141 Safari/537.36 CrKey/1.54.248666",
        ("Chrome", "Chromecast Linux", "tv")),
    "empty": ("", ("unknown", "unknown", "unknown")),
    "missing": (None, ("unknown", "unknown", "unknown")),
    "garbage": ("\x00garbage;;((", ("unknown", "unknown", "unknown")),
    # Past the cut only padding: what is kept is parsed as usual.
    "longer than the cut": (CHROME_WINDOWS + " " + "x" * 10_000, ("Chrome", "Windows", "desktop")),
}


@pytest.mark.parametrize(("header", "expected"), list(CASES.values()), ids=list(CASES))
def test_real_headers(header: str | None, expected: tuple[str, str, str]) -> None:
    assert device(header) == Device(*expected)


def test_the_rust_accelerator_parses() -> None:
    # Its absence must fail the import, not fall back to the pure-Python resolver.
    assert type(user_agent.RESOLVER) is ua_parser.regex.Resolver


def test_only_the_first_characters_are_parsed() -> None:
    # A browser token past the cut is not seen: the parse cost stays bounded.
    hidden = "Mozilla/5.0 (X11; Linux x86_64) " + " " * MAX_UA_CHARS + "Firefox/125.0"
    assert device(hidden).browser != "Firefox"
    assert device(hidden[:MAX_UA_CHARS]) == device(hidden)


def test_values_are_bounded() -> None:
    # Some rules copy part of the header into the family ("$1").
    long_name = "A" * 200
    parsed = device(f"Mozilla/5.0 (compatible; {long_name}bot/1.0)")
    assert parsed.platform == "bot"
    assert all(len(value) <= MAX_VALUE_CHARS for value in parsed)


def test_every_platform_is_one_of_the_documented() -> None:
    assert {Device(*expected).platform for _, expected in CASES.values()} == set(PLATFORMS)


def test_distinct_headers_cannot_grow_the_cache() -> None:
    for n in range(CACHE_SIZE + 100):
        device(f"{CHROME_WINDOWS} build/{n}")
    assert user_agent._cached.cache_info().currsize == CACHE_SIZE


def test_the_pure_python_resolver_agrees() -> None:
    # What the benchmark compares against must be the same function on another backend.
    python = ua_parser.basic.Resolver(load_builtins())
    for header, expected in CASES.values():
        if header:
            assert parse_device(header[:MAX_UA_CHARS], python) == Device(*expected)
