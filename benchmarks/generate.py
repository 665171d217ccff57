"""Generate player events straight into `player_events` inside the engine (INSERT … SELECT),
shaped like real traffic (architecture §10); the materialized views fill the rollups as it goes.

    python -m benchmarks.generate --data-dir data-bench --events 1e9
    python -m benchmarks.generate --data-dir data-bench-heaviest --events 1e9 --heaviest-days 40

Shape: two years from 2024-01-01; client sizes Zipf-like (client 1 carries ~5%, the rest follow
1/rank over `--clients`); countries skewed from each client's home region with a `ZZ` share;
a daily cycle (busiest around midnight UTC, quietest at noon); 40% of events are `watch`. The
audience columns as the collector fills them (see BROWSERS below): most views on a few
browsers and systems, regions of the row's country, 50 pages per client, and viewer keys from
a pool per client of its share of `--events` / 20, so a run that stops early has fewer events
per viewer than planned. `--heaviest-days` writes client 1's events alone, as dense as among
`--events`, over its first days: its queries at a scale whose whole does not fit on the disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pycountry

from benchmarks.record import write_result
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage
from viewstats.core.write_announcements import announcing_rewrite
from viewstats.schema.migrations import migrate

COUNTRIES = ("US IN BR GB DE FR JP ID MX RU TR IT ES CA KR PH VN PL AR TH EG NG PK BD CO UA SA "
             "NL MY AU ZA CL PE RO SE BE CZ PT GR HU AT CH IL SG HK NZ IE DK FI NO KE MA DZ "
             "IR IQ KZ VE EC").split()
START = "2024-01-01 00:00:00"
DAYS = 731
# Client 1 has 5% of the events; every other follows 1/rank over --clients.
HEAVIEST_SHARE = 0.05
CLIENT = "if(r1 < 0.05, 1, toUInt32(1 + floor(pow({clients}, pow(r2, 0.7)))))"

# The audience columns: ~20 browsers and ~10 systems, most of the views on the first few;
# a viewer's region is one of its country's first REGIONS_PER_COUNTRY ISO 3166-2 codes, or ""
# (unknown) for 10%; a client's pages are PAGES pages of its host; its viewers are keys drawn
# from a pool of its expected events / EVENTS_PER_VIEWER (a few return often), so that its
# unique viewers are a few per cent of its events, not one per event.
BROWSERS = ("Chrome", "Mobile Safari", "Chrome Mobile", "Safari", "Edge", "Firefox",
            "Samsung Internet", "Chrome Mobile WebView", "Opera", "Chrome Mobile iOS",
            "Facebook", "Instagram", "Yandex Browser", "UC Browser", "Firefox Mobile",
            "Mobile Safari UI/WKWebView", "Silk", "Opera Mobile", "MiuiBrowser", "unknown")
SYSTEMS = ("Android", "Windows", "iOS", "Mac OS X", "Linux", "Chrome OS", "Tizen", "webOS",
           "Ubuntu", "unknown")
REGIONS_PER_COUNTRY = 6
PAGES = 50
EVENTS_PER_VIEWER = 20

# r1..r14 are independent uniform draws per row (distinct arguments keep them apart). The
# values formatted in are this module's constants and integers, never outside input. A
# client's share of the events (for its pool of viewers) follows the client draw: client 1
# has 5%, any other 95% of the probability that the 1/rank draw lands on it.
INSERT = """
INSERT INTO player_events (client_id, ts, event, type, video_id, view_id, country, host,
                           browser, os, platform, region, embed_url, viewer)
SELECT
    {client} AS client,
    toDateTime64('{start}', 3, 'UTC')
        + toIntervalMillisecond(toInt64(floor(r3 * {days})) * 86400000
            + toInt64(86400000 * (r4 - 0.2 * sin(2 * pi() * r4) / (2 * pi())))),
    multiIf(r5 < 0.4, 'watch', r5 < 0.7, 'start', 'init'),
    multiIf(r6 < 0.7, 'vod', r6 < 0.95, 'live', 'playlist'),
    concat('v-', toString(client), '-', toString(number % 997)),
    generateUUIDv4(number),
    if((if(r7 < 0.02, 0, 1 + toUInt32((cityHash64(client) % 8) * 7
        + floor(pow({n_countries}, pow(r8, 1.6)) - 1)) % {n_countries}) AS country_at) = 0,
        'ZZ', arrayElement({countries}, country_at)),
    concat('site', toString(client % 100), '.example') AS site,
    arrayElement({browsers}, 1 + toUInt32(floor({n_browsers} * pow(r9, 2.5)))),
    arrayElement({systems}, 1 + toUInt32(floor({n_systems} * pow(r10, 2)))),
    multiIf(r11 < 0.45, 'mobile', r11 < 0.85, 'desktop', r11 < 0.92, 'tablet', r11 < 0.96, 'tv',
            r11 < 0.97, 'bot', 'unknown'),
    if(country_at = 0 OR r12 < 0.1, '', arrayElement(arrayElement({regions}, country_at),
        1 + toUInt32(floor(length(arrayElement({regions}, country_at)) * pow(r12, 1.5))))),
    concat('https://', site, '/page', toString(toUInt32(floor({pages} * pow(r13, 2))))),
    greatest(1, cityHash64(client, toUInt64(floor(greatest(1, {events} * if(client = 1, 0.05,
        0.95 * (pow(log(client) / log({clients}), 1 / 0.7)
                - pow(log(client - 1) / log({clients}), 1 / 0.7))) / {events_per_viewer})
        * pow(r14, 2)))))
FROM
(
    SELECT number,
        randCanonical(1) AS r1, randCanonical(2) AS r2,
        randCanonical(3) AS r3, randCanonical(4) AS r4,
        randCanonical(5) AS r5, randCanonical(6) AS r6,
        randCanonical(7) AS r7, randCanonical(8) AS r8,
        randCanonical(9) AS r9, randCanonical(10) AS r10,
        randCanonical(11) AS r11, randCanonical(12) AS r12,
        randCanonical(13) AS r13, randCanonical(14) AS r14
    FROM numbers({offset}, {count})
)
"""


def _regions(country: str) -> list[str]:
    """The country's first top-level ISO 3166-2 codes (pycountry, as the collector's)."""
    return sorted(s.code for s in pycountry.subdivisions if s.country_code == country
                  and s.parent_code is None)[:REGIONS_PER_COUNTRY]


def _statement(values: dict[str, object]) -> str:
    constants: dict[str, object] = {
        "client": CLIENT, "countries": repr(list(COUNTRIES)), "n_countries": len(COUNTRIES),
        "'{start}'": f"'{START}'", "days": DAYS, "browsers": repr(list(BROWSERS)),
        "n_browsers": len(BROWSERS), "systems": repr(list(SYSTEMS)),
        "n_systems": len(SYSTEMS), "pages": PAGES, "events_per_viewer": EVENTS_PER_VIEWER,
        "regions": repr([_regions(c) for c in COUNTRIES]), **values}
    statement = INSERT
    for name, value in constants.items():
        statement = statement.replace(name if name.startswith("'") else f"{{{name}}}",
                                      str(value))
    return statement


def _disk(storage: Storage) -> tuple[int, int]:
    row = storage.query("SELECT sum(rows), sum(bytes_on_disk) FROM system.parts "
                        "WHERE active AND database = currentDatabase() "
                        "AND table = 'player_events'")[0]
    return int(row[0] or 0), int(row[1] or 0)


def generate(storage: Storage, events: int, clients: int, chunk: int,
             heaviest_days: int | None = None) -> dict[str, object]:
    """`events` events; with `heaviest_days`, only client 1's share of them over its first
    that many days (its density at `events`, viewers from the pool it has there)."""
    scale, done = events, 0
    only: dict[str, object] = {}
    if heaviest_days is not None:
        only = {"client": "toUInt32(1)", "days": heaviest_days}
        events = round(scale * HEAVIEST_SHARE * heaviest_days / DAYS)
    started = time.monotonic()
    # INSERT ... SELECT: no record can name what it wrote, so it is announced as anything.
    with announcing_rewrite(storage):
        while done < events:
            count = min(chunk, events - done)
            storage.command(_statement({**only, "offset": done, "count": count,
                                        "events": scale, "clients": float(clients)}),
                            settings={"max_insert_threads": 2, "insert_deduplicate": 0,
                                      "min_insert_block_size_rows": 4_000_000,
                                      "min_insert_block_size_bytes": 0})
            done += count
            rate = done / (time.monotonic() - started)
            print(f"\r{done:,}/{events:,} events  {rate:,.0f} rows/s  "
                  f"eta {(events - done) / rate:,.0f} s   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    elapsed = time.monotonic() - started
    rows, size = _disk(storage)
    print(f"generated {events:,} events in {elapsed:,.1f} s: {events / elapsed:,.0f} rows/s; "
          f"player_events holds {rows:,} rows, {size / 2**30:,.2f} GiB on disk, "
          f"{size / max(rows, 1):.1f} bytes/row")
    return {"events": events, "seconds": elapsed, "rows_per_s": events / elapsed,
            "bytes_per_row": size / max(rows, 1), "disk_bytes": size, "clients": clients,
            "heaviest_days": heaviest_days, "scale_events": scale}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data-bench"),
                        help="embedded data dir (ignored when CLICKHOUSE_URL is set)")
    parser.add_argument("--events", type=float, default=1e6, help="how many (default 1e6)")
    parser.add_argument("--clients", type=int, default=20_000, help="client count (default 20000)")
    parser.add_argument("--chunk", type=float, default=2e7, help="rows per INSERT (default 2e7)")
    parser.add_argument("--heaviest-days", type=int, default=None, metavar="DAYS",
                        help="only the heaviest client's events, as dense as among --events, "
                             "over its first DAYS days (a heavy client's queries at a scale "
                             "whose whole would not fit)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        migrate(storage)
        result = generate(storage, int(args.events), args.clients, int(args.chunk),
                          args.heaviest_days)
    finally:
        storage.close()
    if args.out:
        write_result(args.out, {"benchmark": "generate", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
