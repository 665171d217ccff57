"""The collector's per-beacon cost of the audience fields: a User-Agent's browser, OS and
platform (ingest/collector/user_agent.py) and the viewer key of an address
(ingest/collector/viewer_key.py), in µs per beacon on one core.

    python -m benchmarks.user_agent_cost --out benchmarks/results/user_agent_cost.json

`device()` is timed on a cache hit (a mix of real headers, each seen before) and on a miss
(every header distinct: the mix's headers with random version numbers, as a hostile client or
a long tail would send), on ua-parser's Rust accelerator, and the miss also on its pure-Python
resolver for comparison. The viewer key is timed on random IPv4 and IPv6 addresses. Each figure
is the best of `--rounds` rounds of `--beacons` calls.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ua_parser import load_builtins
from ua_parser.basic import Resolver as PythonResolver

from benchmarks.record import write_result
from viewstats.ingest.collector import user_agent
from viewstats.ingest.collector.user_agent import MAX_UA_CHARS, device, parse_device
from viewstats.ingest.collector.viewer_key import ViewerKeys

T = TypeVar("T")

# Real headers of the platforms a video player sees, in roughly the share they do.
_MIX = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.2478.51",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/{v}.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "{v}.0.3809.146/6.0 TV Safari/537.36",
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.3945.79 Safari/537.36 WebAppManager",
    "Mozilla/5.0 (compatible; Googlebot/2.{v}; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.{v}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.0 Safari/605.1.15",
]


def _headers(count: int, rng: random.Random, distinct: bool) -> list[str]:
    """`count` headers: with `distinct`, each its own (a random version); else ~50 repeating."""
    if distinct:
        return [rng.choice(_MIX).format(v=f"{n}.{rng.randrange(10**6)}") for n in range(count)]
    versions = [rng.randrange(100, 130) for _ in range(3)]
    mix = [header.format(v=v) for header in _MIX for v in versions]
    return [rng.choice(mix) for _ in range(count)]


def _best_us(call: Callable[[T], object], inputs: Sequence[T], rounds: int,
             before: Callable[[], None] = lambda: None) -> float:
    best = float("inf")
    for _ in range(rounds):
        before()
        start = time.perf_counter()
        for value in inputs:
            call(value)
        best = min(best, (time.perf_counter() - start) / len(inputs))
    return best * 1e6


def measure(beacons: int, rounds: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    repeating, distinct = _headers(beacons, rng, False), _headers(beacons, rng, True)
    for header in repeating:  # warm: every header of the mix is in the cache
        device(header)
    python = PythonResolver(load_builtins())
    keys = ViewerKeys(rng.randbytes(32))
    v4 = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(beacons)]
    v6 = [ipaddress.IPv6Address(rng.getrandbits(128)) for _ in range(beacons)]
    python_sample = distinct[:max(1, beacons // 20)]  # ~20x slower: fewer calls say as much
    return {
        "device_hit_us": _best_us(device, repeating, rounds),
        # Cleared before each round, so that no round finds the previous one's headers.
        "device_miss_us": _best_us(device, distinct, rounds, user_agent._cached.cache_clear),
        "device_miss_python_us": _best_us(
            lambda header: parse_device(header[:MAX_UA_CHARS], python), python_sample, rounds),
        "viewer_key_v4_us": _best_us(keys.key, v4, rounds),
        "viewer_key_v6_us": _best_us(keys.key, v6, rounds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beacons", type=int, default=20_000,
                        help="calls per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best counts "
                        "(default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    result = {"beacons": args.beacons, "rounds": args.rounds,
              **measure(args.beacons, args.rounds, args.seed)}
    for name, value in result.items():
        print(f"{name}: {value:,.2f}" if isinstance(value, float) else f"{name}: {value:,}",
              file=sys.stderr)
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
