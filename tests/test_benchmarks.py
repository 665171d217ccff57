"""Every benchmark runs once at a tiny size, the way an operator runs it (`python -m`, a process
of its own), so none can rot unnoticed: each must exit 0 and write the JSON keys that
benchmarks.report reads, and the report must be written from them. The sizes are far too small
for the numbers to mean anything, so no time or speed is asserted."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from benchmarks.asks import Ask, Windows
from benchmarks.family import MIX_QUERIES, QUERIES
from benchmarks.mix import Item, checked, in_turn
from benchmarks.report import checks, load
from benchmarks.report_parts import NOT_MEASURED
from benchmarks.window_classes import CLASSES, MINUTE_MS, QUARTER_MS, ZONES, ClassWindows
from tests.support.geoip_fixture import shared_test_mmdb
from tests.support.kafka import KafkaBroker
from viewstats.query_api.breakdown import Breakdown, Bucket, breakdown_query
from viewstats.query_api.plan import DAY_MS
from viewstats.query_api.window import Window, parse_window

REPO = Path(__file__).resolve().parent.parent
RECORD_KEYS = {"command", "date", "machine"}
CONSUMER_RUN_KEYS = {"batch_rows", "batch_ms", "seconds", "events_per_s", "cpu_cores",
                     "peak_rss_mb", "peak_anon_mb", "batches", "store_seconds"}
# A fragment of each query target's name in benchmarks.report (architecture §10).
QUERY_TARGETS = ("query p50", "query p99", "day-aligned windows", "partial-hour edges",
                 "(warm, concurrency 1)", "(cold, concurrency 1)", "answers equal player_events",
                 "throughput at concurrency 8 and 32")
# The mix and settle modes at a tiny size (each run a fraction of a second).
MIX_FLAGS = ("--mix-seconds", 0.2, "--mix-requests", 30, "--meet-seconds", 0,
             "--settle-seconds", 1, "--settle-requests", 60)
HOUR_MS = 3_600_000
FRESHNESS_KEYS = {"benchmark", "path", "beacons", "missing", "poll_ms", "p50_ms", "p99_ms",
                  "max_ms", "mean_ms", "ack_p50_ms", "ack_p99_ms", *RECORD_KEYS}


def _bench(module: str, *args: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{module} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done


def _json(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this module's benchmarks write, as benchmarks/results/ for the report."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def generated(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("bench") / "data"
    _bench("generate", "--data-dir", data, "--events", 20_000, "--out", results / "generate.json")
    return data


@pytest.fixture(scope="module")
def query_latency(generated: Path, results: Path) -> Path:
    out = results / "query_latency.json"
    _bench("query_latency", "--data-dir", generated, "--requests", 20, "--cold-runs", 1,
           "--cold-warmup", 1, "--checks", 1, "--raw-runs", 1, "--floor-runs", 20, *MIX_FLAGS,
           "--out", out)
    return out


@pytest.fixture(scope="module")
def statistics_latency(generated: Path, results: Path) -> Path:
    out = results / "statistics_latency.json"
    _bench("statistics_latency", "--data-dir", generated, "--requests", 3, "--cold-runs", 1,
           "--cold-warmup", 1, "--checks", 1, "--floor-runs", 20, *MIX_FLAGS, "--out", out)
    return out


@pytest.fixture(scope="module")
def collector(results: Path) -> Path:
    out = results / "collector_throughput.json"
    _bench("collector_throughput", "--seconds", 1, "--geoip", shared_test_mmdb(), "--out", out)
    return out


@pytest.fixture(scope="module")
def freshness(results: Path) -> Path:
    out = results / "freshness.json"
    _bench("freshness", "--beacons", 10, "--geoip", shared_test_mmdb(), "--out", out)
    return out


@pytest.mark.chdb
@pytest.mark.slow
def test_generate(generated: Path, results: Path) -> None:
    assert _json(results / "generate.json").keys() >= {
        "events", "seconds", "rows_per_s", "bytes_per_row", "disk_bytes", "command", "date"}


@pytest.mark.chdb
@pytest.mark.slow
def test_query_latency(query_latency: Path) -> None:
    result = _json(query_latency)
    assert result.keys() >= {"floor_ms", "floor_p99_ms", "clients", "cells", "throughput",
                             "checked", "mismatches", "api_source", *RECORD_KEYS}
    assert result["clients"].keys() == {"heaviest", "median", "tail"}
    cells = {(c["mode"], c["client"], c["window"], c["shape"], c["concurrency"])
             for c in result["cells"]}
    assert len(cells) == len(result["cells"])
    assert cells == {(mode, client, window, shape, concurrency)
                     for client in ("heaviest", "median", "tail")
                     for window in ("1d", "31d", "365d") for shape in ("aligned", "edges")
                     for mode, concurrency in (("cold", 1), ("warm", 1), ("warm", 8),
                                               ("repeated", 1), ("repeated", 8))}
    for cell in result["cells"]:
        assert cell.keys() >= {"requests", "p50_ms", "p99_ms", "p50_floors", "p99_floors",
                               "rps", "raw_ms", "speedup", "client_id"}
        assert (cell["rps"] is None) == (cell["mode"] == "cold")
    assert [t["concurrency"] for t in result["throughput"]] == [1, 8, 32]
    assert result["checked"] > 0
    assert result["mismatches"] == []
    _assert_mix(result, ["countries"])


def _assert_mix(result: dict[str, Any], endpoints: list[str]) -> None:
    """A mix run per class and the whole mix at each concurrency, each with its cells, and a
    settle run read second by second."""
    mix = result["mix"]
    assert [e["name"] for e in mix["endpoints"]] == endpoints
    assert {(r["run"], r["concurrency"]) for r in mix["runs"]} == {
        (run, c) for run in (*CLASSES, "mix") for c in (1, 8, 32)}
    whole = {(c["run"], c["class"], c["endpoint"], c["concurrency"]) for c in mix["cells"]}
    assert {("mix", "all", "all", c) for c in (1, 8, 32)} <= whole
    assert all(c["requests"] + c["refused"] > 0 for c in mix["cells"])
    assert all(c["failed"] == 0 for c in mix["cells"])
    settle = result["settle"]
    assert settle["concurrency"] == 8 and settle["answers"] > 0
    assert settle["per_second"] and all("sealed_bytes" in s for s in settle["samples"])
    assert result["load_average"].keys() == {"start", "end"} and result["run_seconds"] > 0


@pytest.mark.chdb
@pytest.mark.slow
def test_statistics_latency(statistics_latency: Path) -> None:
    result = _json(statistics_latency)
    assert result.keys() >= {"floor_ms", "clients", "values", "queries", "cells", "checked",
                             "mismatches", *RECORD_KEYS}
    queries = {q.name: q for q in QUERIES}
    assert [q["name"] for q in result["queries"]] == list(queries)
    cells = {(c["mode"], c["query"], c["client"], c["window"], c["shape"], c["concurrency"])
             for c in result["cells"]}
    assert len(cells) == len(result["cells"])
    assert cells == {(mode, query, client, window, shape, concurrency)
                     for query in queries for client in ("heaviest", "median", "tail")
                     for window in ("1d", "31d", "365d") for shape in ("aligned", "edges")
                     for mode, concurrency in (("cold", 1), ("warm", 1), ("warm", 8),
                                               ("repeated", 1), ("repeated", 8))}
    assert all(c["raw_ms"] > 0 and c["speedup"] > 0 for c in result["cells"])
    # At least every cell's first window (its cold and warm windows may repeat one by chance).
    assert result["checked"] >= len(cells) // 5
    assert result["mismatches"] == []
    _assert_mix(result, [q.name for q in MIX_QUERIES])


@pytest.mark.parametrize("window_class", CLASSES)
def test_each_window_class_lands_where_it_says(window_class: str) -> None:
    """Every window of a class has its ends where the class says, and no coarser (a minute
    edge on a quarter-hour would be served as a quarter's); the API reads its date_from and
    date_to as that very window; none repeats."""
    first = 19_723 * DAY_MS  # 2024-01-01
    end = first + 729 * DAY_MS
    windows = ClassWindows(Windows(random.Random(3), first, end))
    asks = [windows.new(7, window_class) for _ in range(400)]
    assert len({(a.start_ms, a.end_ms) for a in asks}) == len(asks)
    lengths = [a.end_ms - a.start_ms for a in asks]
    assert min(lengths) >= DAY_MS - HOUR_MS and max(lengths) <= 365 * DAY_MS
    assert max(lengths) - min(lengths) > 300 * DAY_MS  # lengths spread over the year
    for ask in asks:
        query = parse_qs(ask.window_query, strict_parsing=True)
        sent = parse_window(query["date_from"][0], query["date_to"][0])
        assert (sent.start_ms, sent.end_ms) == (ask.start_ms, ask.end_ms), ask.window_query
        assert first <= ask.start_ms and ask.end_ms <= end
        edges = (ask.start_ms, ask.end_ms)
        if window_class == "utc-days":
            assert all(e % DAY_MS == 0 for e in edges)
            assert len(query["date_from"][0]) == 10  # a date, as the SDK sends
        elif window_class == "zone-days":
            zone = ask.zone_minutes * MINUTE_MS
            assert ask.zone_minutes in ZONES and ask.zone_minutes % 60
            assert all((e + zone) % DAY_MS == 0 and e % HOUR_MS for e in edges)
            offset = f"{'-' if zone < 0 else '+'}{abs(ask.zone_minutes) // 60:02d}:" \
                     f"{abs(ask.zone_minutes) % 60:02d}"
            assert query["date_from"][0].endswith("T00:00:00" + offset)
            assert query["date_to"][0].endswith("T23:59:59" + offset)
        elif window_class == "hour-edges":
            assert all(e % HOUR_MS == 0 and e % DAY_MS for e in edges)
        elif window_class == "minute-edges":
            assert all(e % MINUTE_MS == 0 and e % QUARTER_MS for e in edges)
        else:
            assert all(e % 1000 for e in edges)
    if window_class == "zone-days":
        assert {a.zone_minutes for a in asks} == set(ZONES)


def test_the_mix_asks_every_class_equally_and_the_endpoints_in_turn() -> None:
    endpoints = ["countries", "views", "hosts"]
    pairs = in_turn(endpoints, list(CLASSES), 3 * 5 * 4, random.Random(1))
    assert [e for _, e in pairs] == endpoints * 20
    for endpoint in endpoints:
        assert sorted(k for k, e in pairs if e == endpoint) == sorted(CLASSES * 4)
    assert [k for k, _ in pairs] != list(CLASSES) * 12  # shuffled
    # The answers checked: the first of each class and endpoint.
    items = [Item(k, e, Ask(1, 0, DAY_MS, True)) for k, e in pairs]
    first = checked(items, 1)
    assert len(first) == 15
    assert {(items[n].window_class, items[n].endpoint) for n in first} == set(pairs)
    assert all(n == min(i for i, p in enumerate(pairs) if p == pairs[n]) for n in first)


def test_statistics_queries_say_what_the_api_reads() -> None:
    """A query marked `player_events` is one whose statement, as the API builds it, reads no
    rollup; every other query's does."""
    window = Window(DAY_MS + 1234, 5 * DAY_MS - 5678)  # whole days, whole hours and edges
    for query in (*QUERIES, *MIX_QUERIES):
        bucket: Bucket | None = None
        keys = query.fields  # hosts, popular, countries
        if query.path == "views":  # rows by date first
            keys, bucket = query.fields[1:], "hour" if query.hourly else "day"
        if query.path == "uniqs":  # `date` is the bucket, when grouped by it
            keys, bucket = (), "day" if query.fields else None
        event = query.event if query.event != "watch" else None
        built = breakdown_query(Breakdown(1, window, keys, bucket, None, event,
                                          dict.fromkeys(query.filters, "x"),
                                          distinct=query.distinct))
        assert built is not None
        reads_rollup = any(name in built[0] for name in ("views_by_", "events_by_", "viewers_"))
        assert reads_rollup == (query.reads == "rollups"), query.name
    assert {q.reads for q in QUERIES} == {"rollups", "player_events"}


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize(("flags", "name", "runs"), [
    (("--batch-rows", 1000), "consumer_throughput.json", 1),
    (("--sweep", "500,2000"), "consumer_sweep.json", 2),
])
def test_consumer_throughput(kafka: KafkaBroker, results: Path, flags: tuple[object, ...],
                             name: str, runs: int) -> None:
    _bench("consumer_throughput", "--bootstrap", kafka.bootstrap, "--events", 2000,
           "--partitions", 2, *flags, "--out", results / name)
    result = _json(results / name)
    assert result.keys() >= {"events", "partitions", "default_batch_rows", "runs", *RECORD_KEYS}
    assert len(result["runs"]) == runs
    assert all(run.keys() >= CONSUMER_RUN_KEYS for run in result["runs"])


@pytest.mark.slow
def test_collector_throughput(collector: Path) -> None:
    assert _json(collector).keys() >= {"beacons_per_s", "server_cpu_cores",
                                       "beacons_per_cpu_second", "non_202_answers", *RECORD_KEYS}
    assert _json(collector)["workers"] == 1


@pytest.mark.slow
def test_collector_throughput_alternates_worker_counts(tmp_path: Path) -> None:
    _bench("collector_throughput", "--seconds", 1, "--warmup", 1, "--workers", "1,2",
           "--rounds", 2, "--geoip", shared_test_mmdb(), "--out", tmp_path / "w{workers}.json")
    for workers in (1, 2):
        result = _json(tmp_path / f"w{workers}.json")
        assert result["workers"] == workers
        assert result["alternated_with"] == [1, 2]
        assert len(result["rounds"]) == 2
        assert result["non_202_answers"] == 0
        # Every beacon answered 202 was counted by the workers' summed /metrics.
        assert result["accepted_per_metrics"] >= result["beacons"] > 0


@pytest.mark.chdb
@pytest.mark.slow
def test_freshness_embedded(freshness: Path) -> None:
    result = _json(freshness)
    assert result.keys() >= FRESHNESS_KEYS
    assert (result["path"], result["beacons"], result["missing"]) == ("embedded", 10, 0)


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_freshness_kafka(kafka: KafkaBroker, results: Path) -> None:
    out = results / "freshness_kafka.json"
    _bench("freshness", "--kafka", "--bootstrap", kafka.bootstrap, "--beacons", 10,
           "--partitions", 2, "--geoip", shared_test_mmdb(), "--out", out)
    result = _json(out)
    assert result.keys() >= FRESHNESS_KEYS
    assert (result["path"], result["beacons"], result["missing"]) == ("kafka", 10, 0)


def _report(results: Path, out: Path) -> None:
    _bench("report", "--results", results, "--out", out / "RESULTS.md", "--plots",
           out / "plots")


@pytest.mark.chdb
@pytest.mark.slow
def test_report_from_the_results(query_latency: Path, statistics_latency: Path, collector: Path,
                                 freshness: Path, generated: Path, results: Path,
                                 tmp_path: Path) -> None:
    # The Kafka benchmarks' results are there too when their tests ran first (file order).
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    assert "## architecture §10 targets" in report
    assert "![query_latency](plots/query_latency.png)" in report
    assert (tmp_path / "plots" / "query_latency.png").stat().st_size > 0
    sweep = (results / "consumer_sweep.json").exists()
    assert (tmp_path / "plots" / "consumer_batch_size.png").exists() == sweep
    measured = {c.target for c in checks(load(results)) if c.met is not None}
    assert any("generated in the engine" in t for t in measured)
    assert all(any(fragment in t for t in measured) for fragment in QUERY_TARGETS)
    assert all(f"### {mode}" in report for mode in ("cold", "warm", "repeated", "Throughput"))
    assert "Before / after" not in report  # no query_latency_previous.json
    assert any("beacons/s per core" in t for t in measured)
    assert any("(embedded path)" in t for t in measured)
    assert any(t.startswith("statistics family") for t in measured)
    family = report[report.index("## Statistics family latency"):]
    assert "### Per query" in family and "### Every cell" in family
    assert all(f"`{q.name}`" in family for q in QUERIES)
    countries = report[report.index("## Query latency"):report.index("## Statistics family")]
    for section in (countries, family):
        assert "### mix" in section and "#### settle" in section
        assert "| whole mix |" in section
    assert "By endpoint, concurrency 8" in family


@pytest.mark.chdb
@pytest.mark.slow
def test_report_compares_with_the_previous_run(query_latency: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    after = _json(query_latency)
    before = {**after, "api_source": "../previous", "cells": [
        {**c, "p50_ms": 2 * c["p50_ms"], "p99_ms": 2 * c["p99_ms"]} for c in after["cells"]],
        "mix": {**after["mix"], "cells": [{**c, "rps": c["rps"] + 1000}
                                          for c in after["mix"]["cells"]]}}
    (results / "query_latency.json").write_text(json.dumps(after))
    (results / "query_latency_previous.json").write_text(json.dumps(before))
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    table = report[report.index("### Before / after"):]
    assert "`../previous`" in table
    # Every cell, once, twice as fast after as before at p50 and p99.
    assert len([line for line in table.splitlines()
                if line.endswith(" | 2.0x |") and line.count(" 2.0x |") == 2]) == len(
        after["cells"])
    # The mix's classes and whole mix, each with its answers/s before (1,000 more) and after.
    mixed = table[table.index("Before (`../previous`"):table.index("#### settle")]
    rows = [line.split(" | ") for line in mixed.splitlines() if line.startswith("| ")][1:]
    assert [row[0] for row in rows] == [f"| {k}" for k in (*CLASSES, "whole mix")]
    assert all(float(row[5].replace(",", "")) - float(row[6].replace(",", "")) in (999, 1000,
                                                                                  1001)
               for row in rows)


def test_report_without_results_invents_nothing(tmp_path: Path) -> None:
    stale = tmp_path / "plots" / "query_latency.png"
    stale.parent.mkdir()
    stale.write_bytes(b"an old plot")
    (tmp_path / "results").mkdir()
    _report(tmp_path / "results", tmp_path)
    assert all(c.met is None and c.measured == NOT_MEASURED
               for c in checks(load(tmp_path / "results")))
    report = (tmp_path / "RESULTS.md").read_text()
    assert "met |" not in report and "missed" not in report and ".png" not in report
    assert not stale.exists()


def test_report_compares_the_sinks_of_one_run(tmp_path: Path) -> None:
    """Each sink of a `--sink` run is a row, counting first, with its per-core figure as a
    share of the counting sink's of the same command; a sink from another run gets none."""
    results = tmp_path / "results"
    results.mkdir()
    run = {"seconds": 10.0, "beacons_per_s": 1.0, "server_cpu_cores": 1.0, "non_202_answers": 0,
           "client_processes": 1, "connections_per_client": 256, "date": "2026-12-07",
           "rounds": [{"beacons_per_cpu_second": 1.0}],
           "command": "python -m benchmarks.collector_throughput --sink counting,kafka"}
    for sink, per_core, command in (("kafka", 5000, run["command"]),
                                    ("counting", 10000, run["command"]),
                                    ("embedded", 4000, "another run")):
        (results / f"collector_sink_{sink}.json").write_text(json.dumps(
            {**run, "sink": sink, "beacons_per_cpu_second": per_core, "command": command}))
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    section = report[report.index("### Through its sinks"):report.index("## Freshness")]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")]
    assert [(row[0], row[6]) for row in rows] == [
        ("| sink", "of the counting sink's"), ("| counting", "1.00x"), ("| embedded", "-"),
        ("| kafka", "0.50x")]


def test_report_shows_open_loop_rows_per_sink_rate_and_code(tmp_path: Path) -> None:
    """Each sink's open-loop rates are rows, the previous code's (`--server-source`) before this
    checkout's; a p99 past the run and a generator behind its schedule are said."""
    results = tmp_path / "results"
    results.mkdir()
    rate = {"offered_per_s": 1000.0, "beacons_per_s": 990.0, "server_cpu_cores": 0.5,
            "server_cpu_ms_per_beacon": 0.5, "p50_ms": 3.0, "p99_ms": 40.0,
            "non_202_answers": {}, "generator_lag_p99_ms": 1.0, "generator_lag_max_ms": 2.0,
            "behind": False, "client_cpu_cores": 0.1}
    run = {"sink": "embedded", "seconds": 10.0, "beacons_per_s": 1.0, "server_cpu_cores": 1.0,
           "beacons_per_cpu_second": 1.0, "non_202_answers": 0, "client_processes": 1,
           "connections_per_client": 256, "rounds": [{"beacons_per_cpu_second": 1.0}],
           "p50_ms": 1.0, "p99_ms": 2.0, "server_cpu_ms_per_beacon": 1.0}
    late = {**rate, "offered_per_s": 5000.0, "p99_ms": None, "behind": True,
            "non_202_answers": {"unanswered": 7}}
    for name, code, rates in (("new", "this checkout", [rate]), ("old", "../old", [rate, late])):
        (results / f"collector_sink_embedded_{name}.json").write_text(json.dumps(
            {**run, "server_source": code, "open_loop": rates, "command": name}))
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    section = report[report.index("#### Open loop"):report.index("## Freshness")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| embedded")]
    assert [(row[1], row[6], row[7], row[-1]) for row in rows] == [
        ("1,000", "40.00", "0", "../old"), ("5,000", "beyond the run", "7 unanswered", "../old"),
        ("1,000", "40.00", "0", "this checkout")]
    assert "**behind**" in rows[1][8] and "**behind**" not in rows[0][8]


def test_report_shows_columnar_reads_per_backend(tmp_path: Path) -> None:
    """One table per backend a benchmarks.columnar_reads result ran on, a row per size, the
    speed-up being query's time over query_columns'."""
    results = tmp_path / "results"
    results.mkdir()
    cells = [{"rows": 1000, "method": "query", "seconds": 0.004, "us_per_row": 4.0,
              "rows_per_s": 250_000.0},
             {"rows": 1000, "method": "query_columns", "seconds": 0.001, "us_per_row": 1.0,
              "rows_per_s": 1_000_000.0}]
    for name, backend in (("columnar_reads", "embedded"), ("columnar_reads_server", "server")):
        (results / f"{name}.json").write_text(json.dumps(
            {"backend": backend, "engine_version": "26.9", "sql": "SELECT 1", "cells": cells,
             "command": "python -m benchmarks.columnar_reads", "date": "2026-12-07"}))
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    section = report[report.index("## Large answers as rows and as columns"):]
    assert "### embedded (ClickHouse 26.9)" in section and "### server" in section
    assert section.count("| 1,000 | 4.000 | 250,000 | 1.000 | 1,000,000 | 4.0x |") == 2


@pytest.mark.chdb
def test_insert_cost_measures_each_code_and_reports_the_ratio(tmp_path: Path) -> None:
    """Both codes (here this checkout twice) time every block size in every round, each in a
    process that ran its own checkout's code, and the report shows the ratio per size."""
    results = tmp_path / "results"
    _bench("insert_cost", "--before", REPO, "--rounds", 2, "--inserts", 2, "--warmup", 0,
           "--out", results / "insert_cost.json")
    result = _json(results / "insert_cost.json")
    assert result.keys() >= {"codes", "rounds", "load_average", *RECORD_KEYS}
    for code in result["codes"].values():
        assert code["viewstats"].startswith(str(REPO))
        assert code["audience_fields"] and code["views"] >= 16
        assert list(code["sizes"]) == ["1", "100", "1000"]
        assert all(s["inserts"] == 4 and s["cpu_ms"] > 0 for s in code["sizes"].values())
    _report(results, tmp_path)
    report = (tmp_path / "RESULTS.md").read_text()
    section = report[report.index("## CPU per insert into embedded storage"):]
    assert [line.split("|")[1].strip() for line in section.splitlines()
            if line.startswith("| 1")] == ["1", "100", "1,000"]
