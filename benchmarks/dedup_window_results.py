"""The dedup window's section of benchmarks/RESULTS.md (benchmarks.report), from the result of
benchmarks.dedup_window_memory: bytes per entry as each writer fills the window, per client
width, the code measured and, when the run had `--before`, the earlier code beside it."""

from __future__ import annotations

from benchmarks.report_parts import Json, provenance, table


def _bytes(cell: Json | None, name: str) -> str:
    return "—" if cell is None else f"{cell[name]:.0f}"


def section(result: Json | None) -> list[str]:
    if result is None:
        return []
    cells: dict[tuple[str, str, int], Json] = {
        (c["code"], c["fill"], c["client_id"]): c for c in result["cells"]}
    commits = {c["code"]: c["commit"] for c in result["cells"]}
    lines = ["## Dedup window memory (`benchmarks.dedup_window_memory`)", "",
             f"Bytes per entry of the writer's dedup window holding {result['entries']:,} keys "
             f"(capacity {result['capacity']:,}: one full generation of two), filled as each "
             "writer fills it, one client per fill (the key ends with the client's digits). "
             "Python: what tracemalloc counts the window holding once its inputs are freed "
             "(sizes as requested; the allocator rounds each object up to 16 bytes). RSS: the "
             "process's growth once the inputs are freed and the heap trimmed, an upper bound: "
             "the embedded fill's window keeps the events' own `ts` integers, allocated among "
             "the events, whose freed memory around them stays resident (a server reuses it for "
             "the next requests). "
             f"Code after: {commits.get('after', '?')}"
             + (f"; before: {commits['before']}, the same run." if "before" in commits else "."),
             ""]
    rows = []
    for _, fill, client_id in (key for key in cells if key[0] == "after"):
        after, before = cells[("after", fill, client_id)], cells.get(("before", fill, client_id))
        rows.append((fill, client_id, _bytes(before, "key_bytes"), after["key_bytes"],
                     _bytes(before, "python_bytes_per_entry"),
                     _bytes(after, "python_bytes_per_entry"),
                     _bytes(before, "rss_bytes_per_entry"), _bytes(after, "rss_bytes_per_entry")))
    lines += table(("fill", "client_id", "key bytes before", "after", "Python B/entry before",
                    "after", "RSS B/entry before", "after"), rows)
    return lines + provenance(result)
