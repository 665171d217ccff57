"""How fast a large answer crosses from the engine into Python (issue 20): `Storage.query`, rows
from JSONCompact (chDB) or clickhouse-connect's rows (a server), against
`Storage.query_columns`, numpy columns from the engine's Arrow answer.

    python -m benchmarks.columnar_reads --out benchmarks/results/columnar_reads.json
    python -m benchmarks.columnar_reads --clickhouse-url http://127.0.0.1:8123 \
        --out benchmarks/results/columnar_reads_server.json

Each answer is `--rows` rows (1e3, 1e5 and 1e6 by default) of (String, UInt64): a video id of
100,000 distinct ones and a count, the shape of a breakdown's answer, made by the engine from
`numbers()` so that no table is read. The embedded engine runs in this process on a temporary
directory (a pool of 2, so reads hold its one read slot, niced, as the API's do); with
`--clickhouse-url` the same statements go to that server instead. Per size, `--runs` rounds
alternate the two methods (one after the other, so a machine whose load changes affects both
alike), each timing enough calls to read at least 1e5 rows; the median round is reported, as
microseconds per row and rows per second, with the machine's load average (1 min) before and
after. Both answers are checked equal, row by row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.record import write_result
from benchmarks.scratch import scratch_storage
from viewstats.core.storage import Storage

SIZES = (1_000, 100_000, 1_000_000)
ROWS_PER_TIMING = 100_000  # small answers are timed over several calls
SQL = ("SELECT concat('video-', toString(number % 100000)) AS video_id, number * 7 AS views"
       " FROM numbers({rows})")
METHODS = ("query", "query_columns")


def _seconds_per_call(read: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        read()
    return (time.perf_counter() - started) / calls


def _size(storage: Storage, rows: int, runs: int) -> list[dict[str, Any]]:
    sql = SQL.format(rows=rows)
    answer = storage.query(sql)
    columns = storage.query_columns(sql)
    as_rows = list(zip(*(column.tolist() for column in columns), strict=True))
    if len(answer) != rows or as_rows != answer:
        raise RuntimeError(f"query_columns differs from query at {rows:,} rows")
    del answer, columns, as_rows  # a run measures its own answer's memory, not these
    reads = {"query": lambda: storage.query(sql),
             "query_columns": lambda: storage.query_columns(sql)}
    calls = max(1, ROWS_PER_TIMING // rows)
    timed: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(runs):
        for method in METHODS:
            timed[method].append(_seconds_per_call(reads[method], calls))
    cells = []
    for method in METHODS:
        seconds = statistics.median(timed[method])
        cells.append({"rows": rows, "method": method, "calls_per_run": calls, "seconds": seconds,
                      "us_per_row": seconds / rows * 1e6, "rows_per_s": rows / seconds,
                      "runs_seconds": timed[method]})
        print(f"{rows:>9,} rows  {method:<13} {seconds * 1e3:9.2f} ms  "
              f"{seconds / rows * 1e6:7.3f} us/row  {rows / seconds:13,.0f} rows/s",
              file=sys.stderr, flush=True)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES),
                        help="answer sizes in rows (1000 100000 1000000)")
    parser.add_argument("--runs", type=int, default=7, help="rounds per size (median reported)")
    parser.add_argument("--clickhouse-url", help="read from this ClickHouse server instead of "
                        "the embedded engine")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if min(args.rows) <= 0 or args.runs <= 0:
        parser.error("--rows and --runs must be positive")
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    with scratch_storage(args.clickhouse_url, "columnar", 2) as storage:
        engine = storage.query("SELECT version()")[0][0]
        cells = [cell for rows in args.rows for cell in _size(storage, rows, args.runs)]
    if args.out:
        write_result(args.out, {
            "benchmark": "columnar_reads",
            "backend": "embedded" if args.clickhouse_url is None else "server",
            "engine_version": engine, "sql": SQL, "runs": args.runs,
            "load_1min": [load_before, os.getloadavg()[0]], "cells": cells})
    return 0


if __name__ == "__main__":
    sys.exit(main())
