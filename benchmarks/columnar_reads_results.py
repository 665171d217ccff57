"""The columnar reads section of benchmarks/RESULTS.md (benchmarks.report), from the results of
benchmarks.columnar_reads: an answer read as rows (`Storage.query`, before) and as numpy columns
(`Storage.query_columns`, after), per answer size, one table per backend it ran on."""

from __future__ import annotations

from benchmarks.report_parts import Json, provenance, table


def _rows(result: Json) -> list[tuple[str, ...]]:
    cells = {(c["rows"], c["method"]): c for c in result["cells"]}
    rows: list[tuple[str, ...]] = []
    for size in dict.fromkeys(c["rows"] for c in result["cells"]):
        before, after = cells[(size, "query")], cells[(size, "query_columns")]
        rows.append((f"{size:,}", f"{before['us_per_row']:.3f}", f"{before['rows_per_s']:,.0f}",
                     f"{after['us_per_row']:.3f}", f"{after['rows_per_s']:,.0f}",
                     f"{before['seconds'] / after['seconds']:.1f}x"))
    return rows


def section(results: list[Json]) -> list[str]:
    if not results:
        return []
    lines = ["## Large answers as rows and as columns (`benchmarks.columnar_reads`)", "",
             "An answer of (String, UInt64) rows made by the engine (`"
             f"{results[0]['sql']}`), read with `Storage.query` (before: rows, from JSONCompact "
             "on the embedded engine, from clickhouse-connect's rows over HTTP from the server "
             "at the URL its command names) and with `Storage.query_columns` (after: numpy "
             "columns from the engine's Arrow answer), the two alternating in each round; the "
             "median round of each. Both answers were checked equal. Speed-up = query time / "
             "query_columns time.", ""]
    for result in results:
        load = result.get("load_1min")
        lines += [f"### {result['backend']} (ClickHouse {result['engine_version']})", "",
                  *([f"Load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after.", ""]
                    if load else []),
                  *table(("rows", "query us/row", "query rows/s", "query_columns us/row",
                          "query_columns rows/s", "speed-up"), _rows(result)),
                  *provenance(result)]
    return lines
