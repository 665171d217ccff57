"""The audience fields' section of benchmarks/RESULTS.md (benchmarks.report), from the result of
benchmarks.user_agent_cost: µs per beacon of a User-Agent's device and of a viewer key."""

from __future__ import annotations

from benchmarks.report_parts import Json, provenance, table


def section(result: Json | None) -> list[str]:
    if result is None:
        return []
    lines = ["## Audience fields per beacon (`benchmarks.user_agent_cost`)", "",
             f"µs per call on one core, the best of {result['rounds']} rounds of "
             f"{result['beacons']:,} calls. A cache hit is a header of a ~50-header mix seen "
             "before; a miss is a header never seen (random versions), parsed by ua-parser's "
             "Rust accelerator, and by its pure-Python resolver for comparison.", ""]
    lines += table(("what", "µs per beacon"), [
        ("device(): cache hit", f"{result['device_hit_us']:.2f}"),
        ("device(): cache miss, Rust (ua-parser-rs)", f"{result['device_miss_us']:.1f}"),
        ("device(): cache miss, pure Python", f"{result['device_miss_python_us']:,.0f}"),
        ("viewer key, IPv4", f"{result['viewer_key_v4_us']:.2f}"),
        ("viewer key, IPv6", f"{result['viewer_key_v6_us']:.2f}")])
    return lines + provenance(result)
