"""The beacon-latency section of benchmarks/RESULTS.md (benchmarks.report), from the results of
benchmarks.beacon_under_reads (beacon_under_reads*.json, one per code it ran): a beacon's
latency alone and while the largest answers are read, and the server's memory meanwhile."""

from __future__ import annotations

from benchmarks.report_parts import Json, ms, provenance, table

P99_RATIO_TARGET = 2.0  # issue 19: a beacon's p99 under reads at most 2x its p99 alone
RSS_TARGET_MB = 300.0  # and RSS at most +300 MB under the largest allowed answers


def _size(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 1024:,.1f} KB"


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def section(results: list[Json]) -> list[str]:
    if not results:
        return []
    lines = ["## Beacon latency under large reads (`benchmarks.beacon_under_reads`)", "",
             "`viewstats run` (embedded chDB) on generated data is sent single-event beacons, "
             "one at a time, each a new view: alone, then while 8 connections read the heaviest "
             "client's views by every group field per hour (issue 19's finding 1) over the "
             "longest window whose answer fits the row cap (`allowed`) and over all time "
             "(`unbounded`: a 422 where the cap exists, the whole answer before). Ratios are "
             "to the same run's beacons alone. Targets: p99 under the `allowed` reads <= "
             f"{P99_RATIO_TARGET:g}x alone, RSS <= +{RSS_TARGET_MB:g} MB.", ""]
    for result in sorted(results, key=lambda r: r.get("label") != "main 9c0bb01"):
        lines += [f"### {result.get('label') or 'this code'} (`{result['api_source']}`): "
                  f"client {result['client']}, `allowed` = {result['allowed_window'][0]} to "
                  f"{result['allowed_window'][1]}, {result['allowed_rows']:,} rows "
                  f"(cap {result['max_rows']:,})", ""]
        lines += table(("phase", "beacons", "p50 ms", "p90 ms", "p99 ms", "p99 vs alone",
                        "reads answered",
                        "largest answer", "RSS peak MB", "RSS over before MB"), [
            (p["phase"], p["beacons"], ms(p["p50_ms"]), ms(p["p90_ms"]), ms(p["p99_ms"]),
             f"{p['p99_vs_alone']:.1f}x",
             ", ".join(f"{n} x {s}" for s, n in p.get("read_statuses", {}).items()) or "-",
             _size(p["read_bytes_max"]) if "read_bytes_max" in p else "-",
             f"{p['rss_peak_bytes'] / 2**20:,.0f}",
             f"{p['rss_over_before_bytes'] / 2**20:+,.0f}")
            for p in result["phases"]])
        allowed = next((p for p in result["phases"] if p["phase"] == "allowed"), None)
        if allowed is not None:
            rss_mb = allowed["rss_over_before_bytes"] / 2**20
            lines += [f"Targets: beacon p99 under the allowed reads {allowed['p99_vs_alone']:.1f}x"
                      f" alone ({_verdict(allowed['p99_vs_alone'] <= P99_RATIO_TARGET)}); RSS "
                      f"under them {rss_mb:+,.0f} MB over before the reads "
                      f"({_verdict(rss_mb <= RSS_TARGET_MB)}).", ""]
        lines += provenance(result)
    return lines
