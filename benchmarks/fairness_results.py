"""The fairness section of benchmarks/RESULTS.md (benchmarks.report), from the result of
benchmarks.fairness: a light client's latency alone and under a heavy client's flood, before
and after per-client budgets, measured in one run on the same data."""

from __future__ import annotations

from benchmarks.report_parts import Json, ms, provenance, table

TARGET_RATIO = 2.0  # light p99 under the flood / alone (issue 19)


def _statuses(phase: Json) -> str:
    return ", ".join(f"{n:,} x {s}" for s, n in phase["statuses"].items())


def section(result: Json | None) -> list[str]:
    if result is None:
        return []
    lines = ["## Fairness (`benchmarks.fairness`)", "",
             f"On {result['events']:,} generated events: the light client "
             f"({result['light_client']}) asks `{result['light_request']}`, never the same "
             f"window twice, at concurrency {result['light_concurrency']}, for "
             f"{result['seconds']:g} s alone, then {result['seconds']:g} s while the heaviest "
             f"client ({result['heavy_client']}) sends `{result['heavy_request']}` (read from "
             f"player_events) at concurrency {result['heavy_concurrency']}. Both sides ran "
             "against `viewstats api` on the same data in the same run; after = this "
             "checkout, before = the code before per-client budgets. Target: the light "
             f"client's p99 under the flood at most {TARGET_RATIO:g}x its p99 alone, and the "
             "heavy client gets 429s.", ""]
    rows = []
    for side, found in result["sides"].items():
        alone, flooded, heavy = found["light_alone"], found["light_flooded"], found["heavy"]
        ratio = found["p99_ratio"]
        rows.append((f"{side} ({found.get('commit', '?')})",
                     f"{ms(alone['p50_ms'])} / {ms(alone['p99_ms'])}",
                     f"{alone['answers']:,}",
                     f"{ms(flooded['p50_ms'])} / {ms(flooded['p99_ms'])}",
                     f"{flooded['answers']:,}", f"{ratio:.1f}x", _statuses(heavy),
                     "met" if ratio <= TARGET_RATIO and "429" in heavy["statuses"]
                     else "not met",
                     _statuses(found["heavy_alone"]) if "heavy_alone" in found else "-"))
    lines += table(("code", "light alone p50 / p99 ms", "answers", "light flooded p50 / p99 ms",
                    "answers", "p99 flooded / alone", "heavy client's statuses", "target",
                    f"heavy alone at c{result.get('single_concurrency', '-')}"), rows)
    return [*lines, *provenance(result)]
