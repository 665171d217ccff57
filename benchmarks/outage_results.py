"""The broker outage loop's section of benchmarks/RESULTS.md (benchmarks.report), from the
results of benchmarks.outage_loop: how many runs of each outage test passed, per code."""

from __future__ import annotations

from benchmarks.report_parts import Json, provenance, table


def section(results: list[Json]) -> list[str]:
    if not results:
        return []
    lines = ["## Broker outages, looped (`benchmarks.outage_loop`)", "",
             "tests/test_broker_outage.py as one pytest session (the module's tests share one "
             "broker), its outage cases repeated, beside CPU-bound processes. Each run streams "
             "beacons into `viewstats run` with Kafka, stops the broker, starts it again, and "
             "passes when every view answered 202 is counted once.", ""]
    for result in results:
        lines += [f"### {result.get('label') or 'run'}: commit {result.get('commit', '?')}, "
                  f"{result['burners']} CPU-bound processes beside, {result['minutes']} min", ""]
        lines += table(("test", "passed", "runs", "other outcomes"), [
            (name, counts.get("passed", 0), sum(counts.values()),
             ", ".join(f"{n} {o}" for o, n in counts.items() if o != "passed") or "none")
            for name, counts in result["cases"].items()])
        if note := result.get("note"):
            lines += [note, ""]
        lines += provenance(result)
    return lines
