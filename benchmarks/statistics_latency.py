r"""Query latency of the statistics family over HTTP (views, hosts, popular, and countries with
a filter; architecture §15), cold and warm as benchmarks.query_latency measures countries.

    python -m benchmarks.statistics_latency --data-dir data-bench \
        --out benchmarks/results/statistics_latency.json

Cells: each query of QUERIES x {heaviest, median, a random tail client} x {1, 31, 365 days} x
{day-aligned, partial-hour edges}, in two modes:
- cold: a fresh `viewstats api` process per window and shape (after a few requests for other
  clients), asked each query once per client, each on a window never asked before;
- warm: one process that has answered the cell's first window, then new windows over the same
  hours (or new day-aligned windows) at concurrency 1 and 8; no two requests are alike.
There is no repeated mode: the family keeps no answers in memory, so a repeated window costs
what a new one does. Filter values are each client's most viewed video, its top country and
its top host. Every cold answer, each cell's first window and `--checks` warm answers per cell
are compared, rows in the documented order, with the same count made from `player_events`
alone, and must be equal; that count's median time over `--raw-runs` runs is the baseline of
the speed-up. Queries marked `player_events` are those the API answers from the raw events
alone (the README lists them; tests/test_benchmarks.py ties the mark to the API's choice).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks.asks import (
    DAYS,
    SHAPES,
    Ask,
    Floor,
    Windows,
    add_options,
    api_process,
    cell,
    complete,
    finish,
    load_cell,
    pick_clients,
    progress,
    timed,
)
from benchmarks.http_load import get_request, run_load
from viewstats.core.keys import create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage, open_storage

Answer = list[tuple[str | int, ...]]  # rows of (fields…, views), in the documented order


@dataclass(frozen=True)
class Query:
    name: str
    path: str  # under /streaming/statistics/
    params: str  # beside the window; {id}, {country}, {host}: the client's top values
    fields: tuple[str, ...]  # an answer row's fields besides views
    reads: str = "rollups"  # or "player_events" (README, "Statistics endpoints")
    event: str | None = "watch"  # the event counted; None: every event
    hourly: bool = False
    by_views: bool = False  # rows ordered by views descending, then key; else by the fields
    limit: int | None = None

    def target(self, ask: Ask, values: dict[str, str]) -> str:
        extra = self.params.format(**{k: quote(v, safe="") for k, v in values.items()})
        return (f"/streaming/statistics/{self.path}?{ask.window_query}"
                + (f"&{extra}" if extra else ""))

    @property
    def template(self) -> str:
        return (f"/streaming/statistics/{self.path}?date_from=…&date_to=…"
                + (f"&{self.params}" if self.params else ""))

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(name for name in ("id", "country", "host") if f"{{{name}}}" in self.params)


QUERIES = (
    Query("views", "views", "", ("date", "type")),
    Query("views-1h", "views", "granularity=1h", ("date", "type"), hourly=True),
    Query("by-country", "views", "group=country", ("date", "type", "country")),
    Query("by-event", "views", "group=event", ("date", "type", "event"), event=None),
    Query("of-video", "views", "id={id}", ("date", "type")),
    Query("of-host", "views", "host={host}", ("date", "type")),
    Query("hosts", "hosts", "", ("host",), by_views=True),
    Query("popular", "popular", "limit=100", ("id",), by_views=True, limit=100),
    Query("video+country", "views", "id={id}&country={country}", ("date", "type"),
          reads="player_events"),
    Query("by-host+country", "views", "group=host,country", ("date", "type", "host", "country"),
          reads="player_events"),
    Query("video-starts", "views", "id={id}&event=start", ("date", "type"),
          reads="player_events", event="start"),
    Query("countries-of-video", "countries", "id={id}", ("country",), reads="player_events",
          by_views=True),
    Query("countries-of-host", "countries", "host={host}", ("country",), reads="player_events",
          by_views=True),
)
WARMUP = QUERIES[0]  # asked for other clients first on each cold process; needs no top values
_EXPRESSIONS = {"type": "toString(type)", "host": "toString(host)",
                "country": "toString(country)", "event": "toString(event)", "id": "video_id"}
_DATES = {False: "toString(toDate(ts, 'UTC'))",
          True: "formatDateTime(toStartOfHour(ts), '%Y-%m-%dT%H:00:00Z')"}
TOP_VALUES_SQL = {  # a client's most viewed video, country and host
    "id": "SELECT video_id FROM views_by_video_daily WHERE client_id = {client:UInt32} "
          "GROUP BY video_id ORDER BY sum(views) DESC, video_id LIMIT 1",
    "country": "SELECT toString(country) FROM views_by_country_daily "
               "WHERE client_id = {client:UInt32} GROUP BY country "
               "ORDER BY sum(views) DESC, country LIMIT 1",
    "host": "SELECT toString(host) FROM views_by_host_daily WHERE client_id = {client:UInt32} "
            "GROUP BY host ORDER BY sum(views) DESC, host LIMIT 1",
}


def raw_sql(query: Query) -> str:
    """The query's answer counted from `player_events` alone, written apart from the API's
    statement builder (query_api.breakdown) so that it checks it."""
    columns = [f"{_DATES[query.hourly] if f == 'date' else _EXPRESSIONS[f]} AS f_{f}"
               for f in query.fields]
    where = ["client_id = {client:UInt32}", "ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')",
             "ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"]
    if query.event is not None:
        where.append(f"event = '{query.event}'")
    where += [f"{'video_id' if f == 'id' else f} = {{{f}:String}}" for f in query.filters]
    keys = [f"f_{f}" for f in query.fields]
    order = ["views DESC", *keys] if query.by_views else keys
    return (f"SELECT {', '.join([*columns, 'count() AS views'])} FROM player_events "
            f"WHERE {' AND '.join(where)} GROUP BY {', '.join(keys)} "
            f"ORDER BY {', '.join(order)}" + (f" LIMIT {query.limit}" if query.limit else ""))


def raw_answer(storage: Storage, query: Query, ask: Ask, values: dict[str, str],
               runs: int = 1) -> tuple[Answer, float]:
    params: dict[str, str | int] = {"client": ask.client, "start": ask.start_ms,
                                    "end": ask.end_ms, **{f: values[f] for f in query.filters}}
    rows, times = timed(storage, raw_sql(query), params, runs)
    return [(*map(str, row[:-1]), int(row[-1])) for row in rows], statistics.median(times)


def api_answer(url: str, token: str, query: Query, ask: Ask, values: dict[str, str]
               ) -> Answer | int:
    """The answer's rows in the order the API gave them, or its status when not 200."""
    response = httpx.get(url + query.target(ask, values),
                         headers={"Authorization": f"apikey {token}"}, timeout=120)
    if response.status_code != 200:
        return response.status_code
    return [(*(str(row[f]) for f in query.fields), int(row["views"]))
            for row in response.json()["data"]]


@dataclass(frozen=True)
class Plan:
    """Every window the run asks, made before any API process starts (the embedded database
    is opened by one process at a time), with the answers it checks against."""
    clients: dict[str, int]
    values: dict[int, dict[str, str]]  # client -> its top values
    base: dict[tuple[str, str, str, str], Ask]  # (query, who, window, shape) -> first window
    cold: list[dict[tuple[str, str, str, str], Ask]]
    warm: dict[tuple[tuple[str, str, str, str], int], list[Ask]]
    others: list[Ask]  # other clients' windows that warm each cold process up
    checks: dict[tuple[str, Ask], Answer]
    raw_ms: dict[tuple[str, str, str, str], float]


def plan(storage: Storage, args: argparse.Namespace, queries: dict[str, Query],
         rng: random.Random, windows: Windows) -> Plan:
    clients = pick_clients(storage, rng)
    values = {c: {name: str(storage.query(sql, {"client": c})[0][0])
                  for name, sql in TOP_VALUES_SQL.items()} for c in clients.values()}
    base = {(q, who, w, s): windows.new(c, days, s) for q in queries
            for who, c in clients.items() for w, days in DAYS.items() for s in SHAPES}
    cold = [{key: windows.new(ask.client, DAYS[key[2]], key[3]) for key, ask in base.items()}
            for _ in range(args.cold_runs)]
    warm = {(key, concurrency): [windows.near(ask) for _ in range(args.requests)]
            for key, ask in base.items() for concurrency in (1, 8)}
    checks: dict[tuple[str, Ask], Answer] = {}
    raw_ms = {}
    for number, (key, ask) in enumerate(base.items()):
        if number % 30 == 0:
            progress(f"player_events baselines and checks: {number} of {len(base)} cells")
        query, client_values = queries[key[0]], values[ask.client]
        checks[key[0], ask], raw_ms[key] = raw_answer(storage, query, ask, client_values,
                                                      args.raw_runs)
        extra = [run[key] for run in cold] + warm[key, 1][:args.checks]
        for other in extra:
            checks[key[0], other] = raw_answer(storage, query, other, client_values)[0]
    others = [windows.new(int(c), 31, "edges") for (c,) in storage.query(
        "SELECT DISTINCT client_id FROM views_by_country_daily WHERE client_id NOT IN "
        "{ids:Array(UInt32)} LIMIT {n:UInt32}",
        {"ids": str(list(clients.values())),
         "n": args.cold_warmup * args.cold_runs * len(DAYS) * len(SHAPES)})]
    return Plan(clients, values, base, cold, warm, others, checks, raw_ms)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    queries = {q.name: q for q in QUERIES if not args.queries or q.name in args.queries}
    rng = random.Random(args.seed)
    storage = open_storage(Settings.from_env(data_dir=args.data_dir))
    try:
        windows = Windows.of(storage, rng)
        run = plan(storage, args, queries, rng, windows)
        floor = Floor(storage, run.clients["median"], windows.first, args.floor_runs)
    finally:
        storage.close()  # the API process needs the embedded data path
    keys = args.data_dir / "bench_api_keys"
    tokens = {c: create_key(keys, c)[1]
              for c in {*run.clients.values(), *(a.client for a in run.others)}}
    cells: list[dict[str, Any]] = []
    mismatches: list[str] = []

    def ask_once(url: str, port: int, query: Query, ask: Ask) -> list[float]:
        values = run.values.get(ask.client, {})
        target = query.target(ask, values)
        load = asyncio.run(run_load("127.0.0.1", port, [get_request(
            "127.0.0.1", port, target, {"Authorization": f"apikey {tokens[ask.client]}"})],
            concurrency=1, total=1))
        if set(load.statuses) != {200}:
            mismatches.append(f"{target}: statuses {load.statuses}")
        elif (query.name, ask) in run.checks:
            answer = api_answer(url, tokens[ask.client], query, ask, values)
            if answer != run.checks[query.name, ask]:
                mismatches.append(f"{target} (client {ask.client})"
                                  + (f": status {answer}" if isinstance(answer, int) else ""))
        return load.latencies_ms

    cold_ms: dict[tuple[str, str, str, str], list[float]] = {key: [] for key in run.base}
    others = list(run.others)
    for number, cold in enumerate(run.cold):
        for window, shape in ((w, sh) for w in DAYS for sh in SHAPES):
            with api_process(args, keys) as (url, port):
                for other in others[:args.cold_warmup]:
                    ask_once(url, port, WARMUP, other)
                del others[:args.cold_warmup]
                for key, ask in cold.items():
                    if key[2:] == (window, shape):
                        cold_ms[key] += ask_once(url, port, queries[key[0]], ask)
        progress(f"cold: run {number + 1} of {len(run.cold)} done")
    for key, latencies in cold_ms.items():
        cells.append(cell("cold", _labels(key), 1, latencies, floor.ms))
    with api_process(args, keys) as (url, port):
        for key, ask in run.base.items():
            ask_once(url, port, queries[key[0]], ask)  # checked; what follows is warm
            header = {"Authorization": f"apikey {tokens[ask.client]}"}
            for concurrency in (1, 8):
                asks = run.warm[key, concurrency]
                requests = [get_request("127.0.0.1", port,
                                        queries[key[0]].target(a, run.values[a.client]), header)
                            for a in asks]
                cells.append(load_cell("warm", _labels(key), port, requests, concurrency,
                                       len(requests), floor.ms, mismatches))
            for other in run.warm[key, 1][:args.checks]:
                ask_once(url, port, queries[key[0]], other)
    floor.again(args.data_dir)
    complete(cells, floor.ms, run.raw_ms, ("query", "client", "window", "shape"), run.clients)
    for found in cells:
        found["reads"] = queries[found["query"]].reads
    return {**floor.summary(), "clients": run.clients,
            "values": {str(c): v for c, v in run.values.items()},
            "queries": [{"name": q.name, "target": q.template, "reads": q.reads}
                        for q in queries.values()],
            "cells": cells, "checked": len(run.checks),
            # An empty answer checks little: say how many had rows.
            "checked_nonempty": sum(1 for answer in run.checks.values() if answer),
            "mismatches": mismatches}


def _labels(key: tuple[str, str, str, str]) -> dict[str, str]:
    return dict(zip(("query", "client", "window", "shape"), key, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, checks=2, raw_runs=3, seed=12)
    parser.add_argument("--queries", nargs="*", default=None, metavar="NAME",
                        choices=[q.name for q in QUERIES],
                        help="measure only these queries (default: all of "
                             f"{', '.join(q.name for q in QUERIES)})")
    parser.add_argument("--requests", type=int, default=40,
                        help="measured requests per warm cell and concurrency (40)")
    parser.add_argument("--cold-runs", type=int, default=3,
                        help="cold requests per cell, each on a fresh API process (3)")
    args = parser.parse_args(argv)
    return finish("statistics_latency", measure(args), args.out)


if __name__ == "__main__":
    sys.exit(main())
