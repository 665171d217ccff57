"""Write benchmarks/RESULTS.md and its plots from the benchmarks' JSON results.

    python -m benchmarks.report

Reads, from `--results` (default benchmarks/results/), what each benchmark wrote with `--out`:
generate.json, query_latency.json, consumer_throughput.json, consumer_server.json (a run
with `--clickhouse-url`: a consumer without chDB), consumer_sweep.json (a `--sweep` run),
collector_throughput.json, collector_sink_*.json (one per sink of a `--sink` run, closed and
open loop, and the `--before` code's beside: benchmarks.capacity_results),
freshness*.json (one per write path), statistics_latency.json (the family's endpoints,
benchmarks.statistics_report), soak-*.json (one per topology of benchmarks.soak, whose
plots it names), outage_loop*.json (benchmarks.outage_loop, one per code it ran),
dedup_window_memory.json (benchmarks.dedup_window_memory), fairness.json (benchmarks.fairness),
beacon_under_reads*.json (benchmarks.beacon_under_reads, one per code it ran),
columnar_reads*.json (benchmarks.columnar_reads, one per backend it ran on),
user_agent_cost.json (benchmarks.user_agent_cost) and insert_cost.json
(benchmarks.insert_cost). Optional: statistics_latency_audience*.json, statistics_latency's
runs of the audience endpoints (its docstring's last command), a section each;
query_latency_previous.json and statistics_latency_previous.json, the same runs with
`--api-source` pointing at the previous code on the same data; with them the query sections
show each countries cell, and both benchmarks' mix and settle modes, before and after; and
consumer_throughput_previous.json, consumer_throughput run from the previous checkout (the same
`--topic`), shown beside the consumer's.
Every number in the report comes from those files; a result without its file reads "not
measured". The targets of architecture §10 are checked here, in one place. Plots go to `--plots`
(default benchmarks/plots/): query_latency.png and consumer_batch_size.png; a plot whose
result is missing is removed, so none outlives its data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from benchmarks.beacon_under_reads_results import section as beacon_section
from benchmarks.capacity_results import section as collector_sinks_section
from benchmarks.columnar_reads_results import section as columnar_section
from benchmarks.dedup_window_results import section as dedup_window_section
from benchmarks.fairness_results import section as fairness_section
from benchmarks.insert_cost_results import section as insert_cost_section
from benchmarks.mix_report import mix_section
from benchmarks.outage_results import section as outage_section
from benchmarks.record import machine
from benchmarks.report_parts import (
    NOT_MEASURED,
    Check,
    Json,
    duration,
    exactness,
    ms,
    provenance,
    table,
)
from benchmarks.soak_results import sections as soak_sections
from benchmarks.statistics_report import AUDIENCE_TITLE, exact_check, statistics_section
from benchmarks.user_agent_cost_results import section as audience_section

# architecture §10.
EVENTS_TARGET = 1_000_000_000
GENERATE_SECONDS_TARGET = 3600  # "in minutes": under an hour
WARM_P50_MS = 5.0  # warm windows, concurrency 8, every cell
WARM_P99_MS = 15.0
COLD_ALIGNED_FLOORS = 3.0  # cold p50 as a multiple of the engine floor F, concurrency 1
COLD_EDGES_FLOORS = 5.0
WARM_SPEEDUP = 100.0  # 365-day heaviest client vs player_events alone
COLD_SPEEDUP = 20.0
CONSUMER_EVENTS_PER_S = 250_000
COLLECTOR_PER_CORE = 10_000
FRESHNESS_P99_MS = 2000.0
CONSUMER_ANON_MB = 400.0  # whatever the backlog
CONSUMER_SERVER_RSS_MB = 300.0  # server mode: no chDB in the consumer's process
PATHS = ("embedded", "kafka")


@dataclass(frozen=True)
class Results:
    generate: Json | None
    query: Json | None
    query_previous: Json | None
    consumer: Json | None
    consumer_server: Json | None
    sweep: Json | None
    collector: Json | None
    collector_sinks: list[Json]  # per sink and code (benchmarks.capacity_results)
    freshness: list[Json]
    statistics: Json | None
    soaks: list[Json] = field(default_factory=list)  # benchmarks.soak, one per topology
    outage_loops: list[Json] = field(default_factory=list)  # benchmarks.outage_loop, per code
    dedup_window: Json | None = None  # benchmarks.dedup_window_memory
    fairness: Json | None = None  # benchmarks.fairness
    beacons: list[Json] = field(default_factory=list)  # benchmarks.beacon_under_reads, per code
    columnar: list[Json] = field(default_factory=list)  # benchmarks.columnar_reads, per backend
    statistics_previous: Json | None = None  # statistics_latency of the previous code
    consumer_previous: Json | None = None  # consumer_throughput run from the previous code
    audience: Json | None = None  # benchmarks.user_agent_cost
    insert_cost: Json | None = None  # benchmarks.insert_cost
    # statistics_latency's runs of the audience endpoints, one per data set
    statistics_audience: list[Json] = field(default_factory=list)


def load(directory: Path) -> Results:
    def read(name: str) -> Json | None:
        path = directory / name
        return json.loads(path.read_text()) if path.is_file() else None

    freshness = [json.loads(p.read_text()) for p in sorted(directory.glob("freshness*.json"))]
    sinks = [json.loads(p.read_text()) for p in sorted(directory.glob("collector_sink_*.json"))]
    return Results(read("generate.json"), read("query_latency.json"),
                   read("query_latency_previous.json"), read("consumer_throughput.json"),
                   read("consumer_server.json"),
                   read("consumer_sweep.json"), read("collector_throughput.json"), sinks,
                   freshness, read("statistics_latency.json"),
                   [json.loads(p.read_text()) for p in sorted(directory.glob("soak-*.json"))],
                   [json.loads(p.read_text())
                    for p in sorted(directory.glob("outage_loop*.json"))],
                   read("dedup_window_memory.json"),
                   read("fairness.json"),
                   [json.loads(p.read_text())
                    for p in sorted(directory.glob("beacon_under_reads*.json"))],
                   [json.loads(p.read_text())
                    for p in sorted(directory.glob("columnar_reads*.json"))],
                   read("statistics_latency_previous.json"),
                   read("consumer_throughput_previous.json"),
                   read("user_agent_cost.json"), read("insert_cost.json"),
                   [json.loads(p.read_text())
                    for p in sorted(directory.glob("statistics_latency_audience*.json"))])


def _cell_name(cell: Json) -> str:
    return (f"{cell['mode']} c{cell['concurrency']} {cell['client']} {cell['window']} "
            f"{cell['shape']}")


def _generate_check(result: Json | None) -> Check:
    target = (f"{EVENTS_TARGET:,} events generated in the engine in minutes "
              f"(read: under {GENERATE_SECONDS_TARGET // 60} min)")
    if result is None:
        return Check(target, NOT_MEASURED, None)
    return Check(target, f"{result['events']:,} events in {duration(result['seconds'])}",
                 result["events"] >= EVENTS_TARGET
                 and result["seconds"] < GENERATE_SECONDS_TARGET)


# benchmarks.query_latency's modes, as the report introduces each mode's table.
QUERY_MODES = {
    "cold": "Every request is its client's first on a fresh `viewstats api` process, "
            "concurrency 1:",
    "warm": "New windows over what earlier requests loaded (other days, or ends moved by random "
            "milliseconds inside the same hours), so no whole-window answer is reused:",
    "repeated": "One window asked again and again:"}


def _group(cells: list[Json], mode: str, concurrency: int, **where: str) -> list[Json]:
    return [c for c in cells if c["mode"] == mode and c["concurrency"] == concurrency
            and all(c[k] == v for k, v in where.items())]


def _latency_check(cells: list[Json], key: str, limit: float) -> Check:
    name = key.removesuffix("_ms")
    target = f"query {name} <= {limit:g} ms in every warm cell at concurrency 8 (new windows)"
    group = _group(cells, "warm", 8)
    if not group:
        return Check(target, NOT_MEASURED, None)
    worst = max(group, key=lambda c: c[key])
    return Check(target, f"worst {ms(worst[key])} ms ({_cell_name(worst)}) of {len(group)} "
                 "cells", worst[key] <= limit)


def _cold_check(result: Json, shape: str, limit: float) -> Check:
    meaning = "day-aligned windows" if shape == "aligned" else "partial-hour edges"
    target = (f"cold query (a fresh API process) p50 <= {limit:g}x the engine floor F at "
              f"concurrency 1, {meaning}")
    group = _group(result["cells"], "cold", 1, shape=shape)
    if not group:
        return Check(target, NOT_MEASURED, None)
    worst = max(group, key=lambda c: c["p50_floors"])
    return Check(target, f"worst {worst['p50_floors']:,.1f} F = {ms(worst['p50_ms'])} ms "
                 f"({_cell_name(worst)}) of {len(group)} cells; F = "
                 f"{ms(result['floor_ms'])} ms", worst["p50_floors"] <= limit)


def _speedup_check(cells: list[Json], mode: str, limit: float) -> Check:
    target = (f"365-day heaviest-client answer >= {limit:g}x faster than player_events alone "
              f"({mode}, concurrency 1)")
    group = _group(cells, mode, 1, client="heaviest", window="365d")
    if not group:
        return Check(target, NOT_MEASURED, None)
    worst = min(group, key=lambda c: c["speedup"])
    others = "; ".join(f"{c['shape']}: {c['speedup']:,.1f}x" for c in group if c is not worst)
    return Check(target, f"{worst['speedup']:,.1f}x ({_cell_name(worst)}: player_events "
                 f"{ms(worst['raw_ms'])} ms vs p50 {ms(worst['p50_ms'])} ms)"
                 + (f"; {others}" if others else ""), worst["speedup"] >= limit)


def _throughput_check(result: Json) -> Check:
    target = "throughput at concurrency 8 and 32 no lower than at 1 (warm windows)"
    rps = {t["concurrency"]: t["rps"] for t in result["throughput"]}
    if not {1, 8, 32} <= rps.keys():
        return Check(target, NOT_MEASURED, None)
    lowest = min((8, 32), key=lambda c: rps[c])
    return Check(target, ", ".join(f"c{c} {rps[c]:,.0f} req/s" for c in (1, 8, 32))
                 + f"; lowest c{lowest} = {rps[lowest] / rps[1]:.2f}x of c1",
                 rps[lowest] >= rps[1])


def _query_checks(result: Json | None) -> list[Check]:
    measured = result or {"cells": [], "throughput": []}
    cells: list[Json] = measured["cells"]
    return [_latency_check(cells, "p50_ms", WARM_P50_MS),
            _latency_check(cells, "p99_ms", WARM_P99_MS),
            _cold_check(measured, "aligned", COLD_ALIGNED_FLOORS),
            _cold_check(measured, "edges", COLD_EDGES_FLOORS),
            _speedup_check(cells, "warm", WARM_SPEEDUP),
            _speedup_check(cells, "cold", COLD_SPEEDUP),
            exactness("answers equal player_events in every cell (same run), every answer "
                      "HTTP 200", result), _throughput_check(measured)]


def _consumer_checks(result: Json | None, server: Json | None,
                     sweep: Json | None) -> list[Check]:
    speed = f"Kafka -> ClickHouse >= {CONSUMER_EVENTS_PER_S:,} events/s per consumer process"
    memory = f"consumer anonymous memory < {CONSUMER_ANON_MB:g} MB whatever the backlog"
    server_memory = (f"server-mode consumer (no chDB loaded) RSS < {CONSUMER_SERVER_RSS_MB:g} MB")
    checks = []
    if result is None:
        checks.append(Check(speed, NOT_MEASURED, None))
    else:
        runs: list[Json] = result["runs"]
        checks.append(Check(speed, "; ".join(
            f"{r['events_per_s']:,.0f} events/s (batch_rows {r['batch_rows']:,})" for r in runs),
            all(r["events_per_s"] >= CONSUMER_EVENTS_PER_S for r in runs)))
    measured = [(r, doc["events"]) for doc in (result, server, sweep) if doc is not None
                for r in doc["runs"]]
    if not measured:
        checks.append(Check(memory, NOT_MEASURED, None))
    else:
        run, backlog = max(measured, key=lambda item: item[0]["peak_anon_mb"])
        checks.append(Check(memory, f"peak {run['peak_anon_mb']:,.0f} MB, the highest of "
                            f"{len(measured)} run(s) (batch_rows {run['batch_rows']:,}, backlog "
                            f"{backlog:,} events; RSS {run['peak_rss_mb']:,.0f} MB with the "
                            "file-backed pages, mostly chDB's library)",
                            run["peak_anon_mb"] < CONSUMER_ANON_MB))
    server_runs = [r for r in (server or {}).get("runs", []) if r.get("chdb_loaded") is False]
    if not server_runs:
        checks.append(Check(server_memory, NOT_MEASURED, None))
    else:
        run = max(server_runs, key=lambda r: r["peak_rss_mb"])
        checks.append(Check(server_memory, f"peak {run['peak_rss_mb']:,.0f} MB "
                            f"({run['events_per_s']:,.0f} events/s into a server)",
                            run["peak_rss_mb"] < CONSUMER_SERVER_RSS_MB))
    return checks


def _collector_check(result: Json | None) -> Check:
    target = f"collector >= {COLLECTOR_PER_CORE:,} single-event beacons/s per core"
    if result is None:
        return Check(target, NOT_MEASURED, None)
    return Check(target, f"{result['beacons_per_cpu_second']:,.0f} beacons per server "
                 f"CPU-second ({result['beacons_per_s']:,.0f}/s at "
                 f"{result['server_cpu_cores']:.0%} of a core)",
                 result["beacons_per_cpu_second"] >= COLLECTOR_PER_CORE)


def _freshness_checks(results: list[Json]) -> list[Check]:
    checks = []
    for path in PATHS:
        target = (f"visible in the API p99 <= {FRESHNESS_P99_MS / 1000:g} s after the "
                  f"acknowledgement ({path} path)")
        runs = [r for r in results if r["path"] == path]
        if not runs:
            checks.append(Check(target, NOT_MEASURED, None))
            continue
        checks.append(Check(target, "; ".join(
            f"p99 {ms(r['p99_ms'])} ms over {r['beacons']} beacons, {r['missing']} never seen"
            for r in runs), all(r["p99_ms"] <= FRESHNESS_P99_MS and r["missing"] == 0
                                for r in runs)))
    return checks


def checks(results: Results) -> list[Check]:
    return [_generate_check(results.generate), *_query_checks(results.query),
            *_consumer_checks(results.consumer, results.consumer_server, results.sweep),
            _collector_check(results.collector), *_freshness_checks(results.freshness),
            exact_check(results.statistics)]


def _query_plot(result: Json, path: Path) -> None:
    """One panel per mode: a p50 bar per cell and concurrency, its p99 as a whisker, with the
    player_events answer, the floor F and the mode's targets as lines to read them against."""
    floor: float = result["floor_ms"]
    every = result["cells"]
    figure = Figure(figsize=(14, 12), layout="constrained")
    panels = figure.subplots(len(QUERY_MODES), 1, sharey=True)
    # One log scale for all panels (so modes compare by eye) that shows every whisker and line.
    panels[0].set_ylim(min(floor, *(c["p50_ms"] for c in every)) / 1.5,
                       max(WARM_P99_MS, *(max(c["p99_ms"], c["raw_ms"]) for c in every)) * 1.5)
    for axes, mode in zip(panels, QUERY_MODES, strict=True):
        cells = [c for c in result["cells"] if c["mode"] == mode]
        keys = list(dict.fromkeys((c["client"], c["window"], c["shape"]) for c in cells))
        levels = sorted({c["concurrency"] for c in cells})
        width = 0.8 / max(len(levels), 1)
        for number, level in enumerate(levels):
            at = {(c["client"], c["window"], c["shape"]): c for c in cells
                  if c["concurrency"] == level}
            xs = [i + (number - (len(levels) - 1) / 2) * width for i, k in enumerate(keys)
                  if k in at]
            group = [at[k] for k in keys if k in at]
            p50 = [c["p50_ms"] for c in group]
            axes.bar(xs, p50, width, label=f"p50, concurrency {level}")
            axes.errorbar(xs, p50, yerr=[[0.0] * len(group),
                                         [c["p99_ms"] - c["p50_ms"] for c in group]],
                          fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        raw = {(c["client"], c["window"], c["shape"]): c["raw_ms"] for c in cells}
        axes.plot(range(len(keys)), [raw[k] for k in keys], linestyle="none", marker="_",
                  markersize=14, color="tab:red", label="player_events alone")
        axes.axhline(floor, color="grey", linestyle=":", linewidth=1,
                     label=f"engine floor F = {floor:.2f} ms")
        for (value, label), style in zip(_plot_targets(mode, floor), ("--", "-."),
                                         strict=False):
            axes.axhline(value, color="tab:purple", linestyle=style, linewidth=1, label=label)
        axes.set_xticks(range(len(keys)), [f"{c}\n{w}\n{s}" for c, w, s in keys],
                        fontsize="x-small")
        axes.set_ylabel("ms over HTTP (log)")
        axes.set_title(f"{mode}: p50 bars, p99 whiskers", fontsize="medium")
        axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.005, 1))
    panels[0].set_yscale("log")
    figure.suptitle("Countries endpoint latency per cell (client, window, shape)")
    figure.savefig(path, dpi=100)


def _plot_targets(mode: str, floor: float) -> list[tuple[float, str]]:
    if mode == "warm":
        return [(WARM_P50_MS, f"c8 p50 target {WARM_P50_MS:g} ms"),
                (WARM_P99_MS, f"c8 p99 target {WARM_P99_MS:g} ms")]
    if mode == "cold":
        return [(COLD_ALIGNED_FLOORS * floor, f"p50 target aligned {COLD_ALIGNED_FLOORS:g} F"),
                (COLD_EDGES_FLOORS * floor, f"p50 target edges {COLD_EDGES_FLOORS:g} F")]
    return []


def _batch_plot(sweep: Json, path: Path) -> None:
    runs = sorted(sweep["runs"], key=lambda r: r["batch_rows"])
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    axes.plot([r["batch_rows"] for r in runs], [r["events_per_s"] for r in runs], marker="o",
              label=f"one consumer, {sweep['events']:,} events")
    axes.axhline(CONSUMER_EVENTS_PER_S, color="tab:red", linestyle="--", linewidth=1,
                 label=f"target {CONSUMER_EVENTS_PER_S:,} events/s")
    axes.set_xscale("log")
    axes.set_xticks([r["batch_rows"] for r in runs], [f"{r['batch_rows']:,}" for r in runs])
    axes.minorticks_off()
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.set_ylim(bottom=0)
    axes.set_xlabel("batch rows (log scale)")
    axes.set_ylabel("events/s")
    axes.set_title("Kafka -> ClickHouse throughput vs consumer batch size")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def _plot(data: Json | None, draw: Callable[[Json, Path], None], path: Path,
          out: Path) -> list[str]:
    """Draw the plot of `data` (or remove a stale one); return the Markdown that shows it."""
    if data is None:
        path.unlink(missing_ok=True)
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    draw(data, path)
    return [f"![{path.stem}]({os.path.relpath(path, out.parent)})", ""]


def _generate_section(result: Json | None) -> list[str]:
    lines = ["## Data generation (`benchmarks.generate`)", ""]
    if result is None:
        return [*lines, NOT_MEASURED, ""]
    return [*lines, *provenance(result), *table(
        ("events", "clients", "seconds", "rows/s", "bytes/row on disk", "on disk"),
        [(f"{result['events']:,}", f"{result['clients']:,}",
          f"{result['seconds']:,.1f}", f"{result['rows_per_s']:,.0f}",
          f"{result['bytes_per_row']:.1f}", f"{result['disk_bytes'] / 2**30:,.2f} GiB")])]


def _with_floors(cell: Json, key: str) -> str:
    return f"{ms(cell[key])} ({cell[key.replace('_ms', '_floors')]:,.1f} F)"


def _requests_text(cells: list[Json]) -> str:
    counts = sorted({c["requests"] for c in cells})
    if len(counts) > 1:
        return f"{counts[0]:,} to {counts[-1]:,} requests per cell"
    return f"{counts[0]:,} request{'' if counts[0] == 1 else 's'} per cell"


def _mode_table(result: Json, mode: str) -> list[str]:
    """One row per client x window x shape; warm and repeated show concurrency 1 and 8 side by
    side, so one row reads across from a lone user to a loaded server."""
    cells = [c for c in result["cells"] if c["mode"] == mode]
    if not cells:
        return [f"### {mode}", "", f"{QUERY_MODES[mode]}", "", NOT_MEASURED, ""]
    by_key = {(c["client"], c["window"], c["shape"], c["concurrency"]): c for c in cells}
    levels = sorted({c["concurrency"] for c in cells})
    header = ["client", "window", "shape"]
    for level in levels:
        header += [f"c{level} p50 ms (in F)", f"c{level} p99 ms (in F)"]
    header += [f"c{levels[-1]} req/s"] if mode != "cold" else []
    header += ["player_events ms", *(f"speed-up c{level}" for level in levels)]
    rows = []
    for client, window, shape in dict.fromkeys((c["client"], c["window"], c["shape"])
                                               for c in cells):
        group = [by_key.get((client, window, shape, level)) for level in levels]
        row: list[object] = [client, window, shape]
        for cell in group:
            row += ([_with_floors(cell, "p50_ms"), _with_floors(cell, "p99_ms")] if cell
                    else ["", ""])
        if mode != "cold":
            row.append(f"{group[-1]['rps']:,.0f}" if group[-1] else "")
        known = next(c for c in group if c)
        row += [ms(known["raw_ms"]),
                *(f"{c['speedup']:,.1f}x" if c else "" for c in group)]
        rows.append(row)
    return [f"### {mode}", "", f"{QUERY_MODES[mode]} {_requests_text(cells)}.", "",
            *table(header, rows)]


def _comparison(result: Json, previous: Json) -> list[str]:
    """Each cell of this run next to the same cell of the previous code, on the same data."""
    lines = ["### Before / after (`query_latency_previous.json`)", "",
             f"Before: the API from `{previous['api_source']}`, recorded "
             f"{previous.get('date', 'at an unrecorded date')} with "
             f"`{previous.get('command', '(command not recorded)')}`. After: "
             f"`{result['api_source']}`. Ratio = before / after (above 1: faster now).", ""]
    if previous["clients"] != result["clients"]:
        lines += [f"**The runs chose different clients** (before {previous['clients']}, after "
                  f"{result['clients']}): the rows compare different data.", ""]
    if previous["mismatches"]:
        lines += [f"Before: {len(previous['mismatches'])} answer(s) differed from "
                  "player_events.", ""]

    def key(cell: Json) -> tuple[str, ...]:
        return (cell["mode"], cell["client"], cell["window"], cell["shape"],
                str(cell["concurrency"]))

    before = {key(c): c for c in previous["cells"]}
    rows = [(*key(c), ms(old["p50_ms"]), ms(c["p50_ms"]), f"{old['p50_ms'] / c['p50_ms']:,.1f}x",
             ms(old["p99_ms"]), ms(c["p99_ms"]), f"{old['p99_ms'] / c['p99_ms']:,.1f}x")
            for c in sorted(result["cells"], key=lambda c: (list(QUERY_MODES).index(c["mode"]),
                                                            c["concurrency"]))
            if (old := before.get(key(c)))]
    return [*lines, *table(("mode", "client", "window", "shape", "concurrency",
                             "p50 ms before", "p50 ms after", "p50 ratio", "p99 ms before",
                             "p99 ms after", "p99 ratio"), rows)]


def _query_section(result: Json | None, previous: Json | None, plots: Path,
                   out: Path) -> list[str]:
    lines = ["## Query latency (`benchmarks.query_latency`)", ""]
    # A run of the mix and settle modes alone has no cells to plot.
    plot = _plot(result if result and result["cells"] else None, _query_plot,
                 plots / "query_latency.png", out)
    if result is None:
        return [*lines, NOT_MEASURED, ""]
    clients = ", ".join(f"{name} = client {number}" for name, number in result["clients"].items())
    lines += [*provenance(result),
              f"Engine floor F (a one-row point read through the same storage layer, same run): "
              f"median {ms(result['floor_ms'])} ms, p99 {ms(result['floor_p99_ms'])} ms. "
              f"Clients: {clients}. API: `{result['api_source']}`. Latency is over HTTP; "
              "\"in F\" is that latency as a multiple of F; player_events ms is the same answer "
              "counted from the raw events alone (one query, median of its runs); speed-up is "
              "player_events ms / p50.", ""]
    for mode in QUERY_MODES:
        lines += _mode_table(result, mode)
    lines += ["### Throughput (warm windows, a new window each request)", "", *table(
        ("concurrency", "req/s", "p50 ms", "p99 ms"),
        [(t["concurrency"], f"{t['rps']:,.0f}", ms(t["p50_ms"]), ms(t["p99_ms"]))
         for t in result["throughput"]])]
    if previous is not None:
        lines += _comparison(result, previous)
    return [*lines, *mix_section(result, previous), *plot]


def _run_rows(doc: Json) -> list[tuple[object, ...]]:
    return [(f"{r['batch_rows']:,}", r["batch_ms"], f"{doc['events']:,}", f"{r['seconds']:.1f}",
             f"{r['events_per_s']:,.0f}", f"{r['cpu_cores']:.2f}", f"{r['peak_rss_mb']:,.0f}",
             f"{r['peak_anon_mb']:,.0f}", r["batches"], f"{r['store_seconds']:.1f}")
            for r in doc["runs"]]


def _consumer_section(result: Json | None, previous: Json | None, server: Json | None,
                      sweep: Json | None, plots: Path, out: Path) -> list[str]:
    header = ("batch rows", "batch ms", "events", "seconds", "events/s", "CPU cores",
              "peak RSS MB", "anonymous MB", "batches", "storing s")
    lines = ["## Kafka -> ClickHouse, one consumer (`benchmarks.consumer_throughput`)", ""]
    parts: list[tuple[Json | None, str | None]] = [
        (result, None),
        (server, "### Into a ClickHouse server (no chDB in the consumer's process)")]
    if previous is not None:  # a comparison only when one was run
        parts.insert(1, (previous, "### The previous code, on the same machine "
                                   "(`consumer_throughput_previous.json`)"))
    for doc, title in parts:
        lines += [title, ""] if title else []
        lines += [NOT_MEASURED, ""] if doc is None else [*provenance(doc),
                                                         *table(header, _run_rows(doc))]
    lines += ["### Throughput by batch size (`--sweep`)", ""]
    plot = _plot(sweep, _batch_plot, plots / "consumer_batch_size.png", out)
    if sweep is None:
        return [*lines, NOT_MEASURED, ""]
    return [*lines, *provenance(sweep), *table(header, _run_rows(sweep)), *plot]


def _collector_section(result: Json | None) -> list[str]:
    lines = ["## Collector, one core (`benchmarks.collector_throughput`)", ""]
    if result is None:
        return [*lines, NOT_MEASURED, ""]
    return [*lines, *provenance(result), *table(
        ("seconds", "beacons/s", "server CPU", "beacons per CPU-second", "answers not 202",
         "client processes x connections", "HTTP / loop"),
        [(f"{result['seconds']:.1f}", f"{result['beacons_per_s']:,.0f}",
          f"{result['server_cpu_cores']:.0%}", f"{result['beacons_per_cpu_second']:,.0f}",
          result["non_202_answers"],
          f"{result['client_processes']} x {result['connections_per_client']}",
          f"{result['http']} / {result['loop']}")])]


def _freshness_section(results: list[Json]) -> list[str]:
    lines = ["## Freshness, acknowledgement to API (`benchmarks.freshness`)", ""]
    if not results:
        return [*lines, NOT_MEASURED, ""]
    for result in results:
        lines += [f"### {result['path']} path", "", *provenance(result), *table(
            ("beacons", "never seen", "p50 ms", "p99 ms", "max ms", "mean ms", "poll every ms",
             "acknowledgement p50 ms", "acknowledgement p99 ms"),
            [(result["beacons"], result["missing"], ms(result["p50_ms"]),
              ms(result["p99_ms"]), ms(result["max_ms"]), ms(result["mean_ms"]),
              f"{result['poll_ms']:g}", ms(result["ack_p50_ms"]),
              ms(result["ack_p99_ms"]))])]
    return lines


def render(results: Results, plots: Path, out: Path) -> str:
    lines = ["# Benchmark results", "",
             f"Written by `python -m benchmarks.report` on "
             f"{datetime.now(UTC).isoformat(timespec='seconds')} from the JSON results each "
             "benchmark wrote with `--out`; do not edit by hand. Every number below is read "
             f"from those files; a result without one reads \"{NOT_MEASURED}\".", "",
             "## Machine", "",
             "Where this report was written; each result names the machine it was recorded on.",
             ""]
    here = machine()
    memory = here["memory_bytes"]
    lines += table(("", ""), [
        ("CPUs", f"{here['cpus']} ({here['cpus_usable']} usable), {here['cpu_model']}"),
        ("memory", f"{memory / 2**30:.1f} GiB" if isinstance(memory, int) else "unknown"),
        ("kernel", here["kernel"]), ("Python", here["python"]), ("chDB", here["chdb"]),
        ("ClickHouse engine (chDB's)", here["clickhouse_engine"])])
    lines += ["## architecture §10 targets", ""]
    lines += table(("target", "measured", "verdict"),
                    [(c.target, c.measured, c.verdict) for c in checks(results)])
    lines += _generate_section(results.generate)
    lines += _query_section(results.query, results.query_previous, plots, out)
    lines += statistics_section(results.statistics, results.statistics_previous)
    for audience in results.statistics_audience:
        lines += statistics_section(audience, title=AUDIENCE_TITLE)
    lines += _consumer_section(results.consumer, results.consumer_previous,
                              results.consumer_server, results.sweep, plots, out)
    lines += _collector_section(results.collector)
    lines += collector_sinks_section(results.collector_sinks)
    lines += _freshness_section(results.freshness)
    lines += soak_sections(results.soaks, out)
    lines += outage_section(results.outage_loops)
    lines += dedup_window_section(results.dedup_window)
    lines += fairness_section(results.fairness)
    lines += beacon_section(results.beacons)
    lines += columnar_section(results.columnar)
    lines += audience_section(results.audience)
    lines += insert_cost_section(results.insert_cost)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=here / "results",
                        help="folder of the benchmarks' JSON results (benchmarks/results)")
    parser.add_argument("--out", type=Path, default=here / "RESULTS.md",
                        help="the report to write (benchmarks/RESULTS.md)")
    parser.add_argument("--plots", type=Path, default=here / "plots",
                        help="folder for the PNG plots (benchmarks/plots)")
    args = parser.parse_args(argv)
    results = load(args.results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, args.plots, args.out))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
