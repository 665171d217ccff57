"""Write benchmarks/RESULTS.md and its plots from the benchmarks' JSON results.

    python -m benchmarks.report

Reads, from `--results` (default benchmarks/results/), what each benchmark wrote with `--out`:
generate.json, query_latency.json, consumer_throughput.json, consumer_sweep.json (a
`--sweep` run), collector_throughput.json and freshness*.json (one per write path). Every
number in the report comes from those files; a result without its file reads "not measured".
The targets of architecture §10 are checked here, in one place. Plots go to `--plots`
(default benchmarks/plots/): query_latency.png and consumer_batch_size.png; a plot whose
result is missing is removed, so none outlives its data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from benchmarks.record import machine

Json = dict[str, Any]

NOT_MEASURED = "not measured"
# architecture §10.
EVENTS_TARGET = 1_000_000_000
GENERATE_SECONDS_TARGET = 3600  # "in minutes": under an hour
QUERY_P50_MS = 10.0
QUERY_P99_MS = 30.0
SPEEDUP_TARGET = 50.0
CONSUMER_EVENTS_PER_S = 250_000
COLLECTOR_PER_CORE = 10_000
FRESHNESS_P99_MS = 2000.0
CONSUMER_RSS_MB = 500.0
PATHS = ("embedded", "kafka")


@dataclass(frozen=True)
class Results:
    generate: Json | None
    query: Json | None
    consumer: Json | None
    sweep: Json | None
    collector: Json | None
    freshness: list[Json]


def load(directory: Path) -> Results:
    def read(name: str) -> Json | None:
        path = directory / name
        return json.loads(path.read_text()) if path.is_file() else None

    freshness = [json.loads(p.read_text()) for p in sorted(directory.glob("freshness*.json"))]
    return Results(read("generate.json"), read("query_latency.json"),
                   read("consumer_throughput.json"), read("consumer_sweep.json"),
                   read("collector_throughput.json"), freshness)


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    met: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return NOT_MEASURED if self.met is None else "met" if self.met else "**missed**"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _cell_name(cell: Json) -> str:
    return f"{cell['client']} {cell['window']} {cell['mode']}"


def _generate_check(result: Json | None) -> Check:
    target = (f"{EVENTS_TARGET:,} events generated in the engine in minutes "
              f"(read: under {GENERATE_SECONDS_TARGET // 60} min)")
    if result is None:
        return Check(target, NOT_MEASURED, None)
    return Check(target, f"{result['events']:,} events in {_duration(result['seconds'])}",
                 result["events"] >= EVENTS_TARGET
                 and result["seconds"] < GENERATE_SECONDS_TARGET)


# query_latency's modes: `distinct` windows are each computed by the database, a `repeated` one
# is answered from the cache after the first request.
MODES = {"distinct": "distinct windows: every answer computed by the database",
         "repeated": "one repeated window: the answer cache"}


def _query_checks(result: Json | None) -> list[Check]:
    exact = "every cell answers exactly what player_events gives (same run), all HTTP 200"
    speed = f"365-day heaviest-client answer >= {SPEEDUP_TARGET:g}x faster than player_events"
    if result is None:
        return [Check(f"query p50 <= {QUERY_P50_MS:g} ms and p99 <= {QUERY_P99_MS:g} ms in "
                      "every cell", NOT_MEASURED, None),
                Check(speed, NOT_MEASURED, None), Check(exact, NOT_MEASURED, None)]
    cells: list[Json] = result["cells"]
    checks = []
    for mode, meaning in MODES.items():
        group = [c for c in cells if c["mode"] == mode]
        if not group:
            continue
        worst50 = max(group, key=lambda c: c["p50_ms"])
        worst99 = max(group, key=lambda c: c["p99_ms"])
        checks += [
            Check(f"query p50 <= {QUERY_P50_MS:g} ms in every cell ({meaning})",
                  f"worst {_ms(worst50['p50_ms'])} ms ({_cell_name(worst50)}) of {len(group)}",
                  worst50["p50_ms"] <= QUERY_P50_MS),
            Check(f"query p99 <= {QUERY_P99_MS:g} ms in every cell ({meaning})",
                  f"worst {_ms(worst99['p99_ms'])} ms ({_cell_name(worst99)}) of {len(group)}",
                  worst99["p99_ms"] <= QUERY_P99_MS)]
    # The speed-up of the database's answer, not the cache's, where both were measured.
    heavy = sorted((c for c in cells if c["client"] == "heaviest" and c["window"] == "365d"),
                   key=lambda c: c["mode"] != "distinct")
    if heavy:
        cell = heavy[0]
        checks.append(Check(speed, f"{cell['speedup']:,.1f}x ({_cell_name(cell)}: "
                            f"{_ms(cell['raw_ms'])} ms from player_events vs p50 "
                            f"{_ms(cell['p50_ms'])} ms)", cell["speedup"] >= SPEEDUP_TARGET))
    else:
        checks.append(Check(speed, NOT_MEASURED, None))
    wrong = [_cell_name(c) for c in cells if not c["equal"] or set(c["statuses"]) != {"200"}]
    checks.append(Check(exact, f"{len(cells) - len(wrong)} of {len(cells)} cells" if not wrong
                        else f"differ or failed: {', '.join(wrong)}", not wrong))
    return checks


def _consumer_checks(result: Json | None, sweep: Json | None) -> list[Check]:
    speed = f"Kafka -> ClickHouse >= {CONSUMER_EVENTS_PER_S:,} events/s per consumer process"
    memory = f"consumer RSS < {CONSUMER_RSS_MB:g} MB whatever the backlog"
    checks = []
    if result is None:
        checks.append(Check(speed, NOT_MEASURED, None))
    else:
        runs: list[Json] = result["runs"]
        checks.append(Check(speed, "; ".join(
            f"{r['events_per_s']:,.0f} events/s (batch_rows {r['batch_rows']:,})" for r in runs),
            all(r["events_per_s"] >= CONSUMER_EVENTS_PER_S for r in runs)))
    measured = [(r, doc["events"]) for doc in (result, sweep) if doc is not None
                for r in doc["runs"]]
    if not measured:
        checks.append(Check(memory, NOT_MEASURED, None))
    else:
        run, backlog = max(measured, key=lambda item: item[0]["peak_rss_mb"])
        checks.append(Check(memory, f"peak {run['peak_rss_mb']:,.0f} MB, the highest of "
                            f"{len(measured)} run(s) (batch_rows {run['batch_rows']:,}, backlog "
                            f"{backlog:,} events; anonymous {run['peak_anon_mb']:,.0f} MB of it, "
                            "the rest file-backed, mostly chDB's library)",
                            run["peak_rss_mb"] < CONSUMER_RSS_MB))
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
            f"p99 {_ms(r['p99_ms'])} ms over {r['beacons']} beacons, {r['missing']} never seen"
            for r in runs), all(r["p99_ms"] <= FRESHNESS_P99_MS and r["missing"] == 0
                                for r in runs)))
    return checks


def checks(results: Results) -> list[Check]:
    return [_generate_check(results.generate), *_query_checks(results.query),
            *_consumer_checks(results.consumer, results.sweep),
            _collector_check(results.collector), *_freshness_checks(results.freshness)]


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _machine_text(recorded: object) -> str:
    if not isinstance(recorded, dict):
        return str(recorded)  # a benchmark that records only a summary line
    memory = recorded["memory_bytes"]
    return (f"{recorded['cpus']} CPUs ({recorded['cpu_model']}), "
            f"{f'{memory / 2**30:.1f} GiB' if memory else 'memory unknown'}, "
            f"{recorded['kernel']}, Python {recorded['python']}, chDB {recorded['chdb']} "
            f"(ClickHouse {recorded['clickhouse_engine']})")


def _provenance(result: Json) -> list[str]:
    lines = [f"Recorded {result.get('date', 'at an unrecorded date')} with:", "",
             f"    {result.get('command', '(command not recorded)')}", ""]
    if "machine" in result:
        lines += [f"on {_machine_text(result['machine'])}.", ""]
    return lines


def _query_plot(result: Json, path: Path) -> None:
    cells: list[Json] = result["cells"]
    figure = Figure(figsize=(max(6.0, 1.1 * len(cells)), 4.5), layout="constrained")
    axes = figure.subplots()
    width = 0.26
    for offset, (key, label) in enumerate((("p50_ms", "p50"), ("p95_ms", "p95"),
                                           ("p99_ms", "p99"))):
        axes.bar([i + (offset - 1) * width for i in range(len(cells))],
                 [c[key] for c in cells], width, label=label)
    axes.axhline(QUERY_P50_MS, color="tab:blue", linestyle="--", linewidth=1,
                 label=f"p50 target {QUERY_P50_MS:g} ms")
    axes.axhline(QUERY_P99_MS, color="tab:green", linestyle="--", linewidth=1,
                 label=f"p99 target {QUERY_P99_MS:g} ms")
    axes.set_yscale("log")
    axes.set_xticks(range(len(cells)), [_cell_name(c).replace(" ", "\n", 1) for c in cells],
                    fontsize="small")
    axes.set_ylabel("latency over HTTP, ms (log scale)")
    axes.set_title("Countries endpoint latency per cell (client, window, mode)")
    axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


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
    return [*lines, *_provenance(result), *_table(
        ("events", "clients", "seconds", "rows/s", "bytes/row on disk", "on disk"),
        [(f"{result['events']:,}", f"{result['clients']:,}",
          f"{result['seconds']:,.1f}", f"{result['rows_per_s']:,.0f}",
          f"{result['bytes_per_row']:.1f}", f"{result['disk_bytes'] / 2**30:,.2f} GiB")])]


def _query_section(result: Json | None, plots: Path, out: Path) -> list[str]:
    lines = ["## Query latency (`benchmarks.query_latency`)", ""]
    plot = _plot(result, _query_plot, plots / "query_latency.png", out)
    if result is None:
        return [*lines, NOT_MEASURED, ""]
    rows = [(c["client"], c["client_id"], c["window"], c["mode"], c["requests"],
             _ms(c["p50_ms"]), _ms(c["p95_ms"]), _ms(c["p99_ms"]), _ms(c["max_ms"]),
             f"{c['rps']:,.0f}",
             _ms(c["raw_ms"]), f"{c['speedup']:,.1f}x", f"{c['views']:,}",
             "yes" if c["equal"] else "**no**") for c in result["cells"]]
    return [*lines, *_provenance(result), *_table(
        ("client", "id", "window", "mode", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms",
         "req/s", "player_events ms", "speed-up", "views", "equal"), rows), *plot]


def _run_rows(doc: Json) -> list[tuple[object, ...]]:
    return [(f"{r['batch_rows']:,}", r["batch_ms"], f"{doc['events']:,}", f"{r['seconds']:.1f}",
             f"{r['events_per_s']:,.0f}", f"{r['cpu_cores']:.2f}", f"{r['peak_rss_mb']:,.0f}",
             f"{r['peak_anon_mb']:,.0f}", r["batches"], f"{r['store_seconds']:.1f}")
            for r in doc["runs"]]


def _consumer_section(result: Json | None, sweep: Json | None, plots: Path,
                      out: Path) -> list[str]:
    header = ("batch rows", "batch ms", "events", "seconds", "events/s", "CPU cores",
              "peak RSS MB", "anonymous MB", "batches", "storing s")
    lines = ["## Kafka -> ClickHouse, one consumer (`benchmarks.consumer_throughput`)", ""]
    if result is None:
        lines += [NOT_MEASURED, ""]
    else:
        lines += [*_provenance(result), *_table(header, _run_rows(result))]
    lines += ["### Throughput by batch size (`--sweep`)", ""]
    plot = _plot(sweep, _batch_plot, plots / "consumer_batch_size.png", out)
    if sweep is None:
        return [*lines, NOT_MEASURED, ""]
    return [*lines, *_provenance(sweep), *_table(header, _run_rows(sweep)), *plot]


def _collector_section(result: Json | None) -> list[str]:
    lines = ["## Collector, one core (`benchmarks.collector_throughput`)", ""]
    if result is None:
        return [*lines, NOT_MEASURED, ""]
    return [*lines, *_provenance(result), *_table(
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
        lines += [f"### {result['path']} path", "", *_provenance(result), *_table(
            ("beacons", "never seen", "p50 ms", "p99 ms", "max ms", "mean ms", "poll every ms",
             "acknowledgement p50 ms", "acknowledgement p99 ms"),
            [(result["beacons"], result["missing"], _ms(result["p50_ms"]),
              _ms(result["p99_ms"]), _ms(result["max_ms"]), _ms(result["mean_ms"]),
              f"{result['poll_ms']:g}", _ms(result["ack_p50_ms"]),
              _ms(result["ack_p99_ms"]))])]
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
    lines += _table(("", ""), [
        ("CPUs", f"{here['cpus']} ({here['cpus_usable']} usable), {here['cpu_model']}"),
        ("memory", f"{memory / 2**30:.1f} GiB" if isinstance(memory, int) else "unknown"),
        ("kernel", here["kernel"]), ("Python", here["python"]), ("chDB", here["chdb"]),
        ("ClickHouse engine (chDB's)", here["clickhouse_engine"])])
    lines += ["## architecture §10 targets", ""]
    lines += _table(("target", "measured", "verdict"),
                    [(c.target, c.measured, c.verdict) for c in checks(results)])
    lines += _generate_section(results.generate)
    lines += _query_section(results.query, plots, out)
    lines += _consumer_section(results.consumer, results.sweep, plots, out)
    lines += _collector_section(results.collector)
    lines += _freshness_section(results.freshness)
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
