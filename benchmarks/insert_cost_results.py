"""The insert cost section of benchmarks/RESULTS.md (benchmarks.report), from the result of
benchmarks.insert_cost: CPU per small insert into embedded storage, this checkout's code beside
an earlier one's, per block size."""

from __future__ import annotations

from benchmarks.report_parts import Json, ms, provenance, table


def _rows(result: Json) -> list[tuple[str, ...]]:
    codes = result["codes"]
    after, before = codes["after"], codes.get("before")
    rows: list[tuple[str, ...]] = []
    for size, cell in after["sizes"].items():
        old = before["sizes"][size] if before else None
        rows.append((f"{int(size):,}",
                     *((ms(old["cpu_ms"]), ms(old["wall_ms"])) if old else ("", "")),
                     ms(cell["cpu_ms"]), ms(cell["wall_ms"]),
                     f"{cell['cpu_ms'] / old['cpu_ms']:.2f}x" if old else "",
                     str(cell["inserts"])))
    return rows


def section(result: Json | None) -> list[str]:
    if result is None:
        return []
    codes = result["codes"]
    before = codes.get("before")
    views = (f"{before['views']} materialized views before ({before['source']}), "
             if before else "")
    lines = ["## CPU per insert into embedded storage (`benchmarks.insert_cost`)", "",
             "`insert_events` of one block into a fresh migrated chDB, timed with the calling "
             "thread's CPU (`time.thread_time`) and wall time; medians of every timed insert "
             f"of {result['rounds']} rounds, the codes alternating. {views}"
             f"{codes['after']['views']} after (this checkout).", ""]
    lines += table(("rows per insert", "before CPU ms", "before wall ms", "after CPU ms",
                    "after wall ms", "CPU after / before", "inserts per code"), _rows(result))
    return lines + provenance(result)
