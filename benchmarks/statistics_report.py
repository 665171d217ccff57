"""The statistics family's section of benchmarks/RESULTS.md, from statistics_latency.json
(benchmarks.statistics_latency): a summary per query, then every cell."""

from __future__ import annotations

from benchmarks.report_parts import NOT_MEASURED, Check, Json, exactness, ms, provenance, table

TITLE = "## Statistics family latency (`benchmarks.statistics_latency`)"


def exact_check(result: Json | None) -> Check:
    return exactness("statistics family (views, hosts, popular, filtered countries): answers "
                     "equal player_events, every answer HTTP 200 (architecture §15)", result)


def _span(values: list[float], text: str = "{}") -> str:
    low, high = min(values), max(values)
    return text.format(ms(low)) if low == high else (
        f"{text.format(ms(low))} to {text.format(ms(high))}")


def _cells(result: Json, mode: str, concurrency: int, query: str) -> list[Json]:
    return [c for c in result["cells"] if (c["mode"], c["concurrency"], c["query"])
            == (mode, concurrency, query)]


def _summary(result: Json) -> list[str]:
    rows = []
    for query in result["queries"]:
        cold = _cells(result, "cold", 1, query["name"])
        warm1 = _cells(result, "warm", 1, query["name"])
        warm8 = _cells(result, "warm", 8, query["name"])
        if not (cold and warm1 and warm8):
            continue
        one = {_key(c): c for c in warm1}
        rows.append((f"`{query['name']}`", query["reads"],
                     _span([c["p50_ms"] for c in cold]),
                     _span([c["p50_floors"] for c in cold], "{} F"),
                     _span([c["p50_ms"] for c in warm1]), _span([c["p50_ms"] for c in warm8]),
                     ms(max(c["p99_ms"] for c in warm8)),
                     _span([c["p50_ms"] / one[_key(c)]["p50_ms"] for c in warm8], "{}x"),
                     _span([c["rps"] for c in warm8]),
                     _span([c["raw_ms"] for c in warm1]),
                     _span([c["speedup"] for c in warm1], "{}x")))
    return table(("query", "reads", "cold p50 ms", "cold p50 in F", "warm c1 p50 ms",
                  "warm c8 p50 ms", "warm c8 worst p99 ms", "warm p50 c8 / c1",
                  "warm c8 req/s", "player_events ms", "speed-up warm c1"), rows)


def _key(cell: Json) -> tuple[str, str, str]:
    return cell["client"], cell["window"], cell["shape"]


def _every_cell(result: Json) -> list[str]:
    by_key = {(c["mode"], c["concurrency"], c["query"], c["client"], c["window"], c["shape"]): c
              for c in result["cells"]}
    rows = []
    for cold in (c for c in result["cells"] if c["mode"] == "cold"):
        key = (cold["query"], cold["client"], cold["window"], cold["shape"])
        warm1, warm8 = by_key.get(("warm", 1, *key)), by_key.get(("warm", 8, *key))
        rows.append((*key, f"{ms(cold['p50_ms'])} ({cold['p50_floors']:,.1f} F)",
                     *(f"{ms(c['p50_ms'])} / {ms(c['p99_ms'])}" if c else ""
                       for c in (warm1, warm8)),
                     f"{warm8['rps']:,.0f}" if warm8 else "", ms(cold["raw_ms"]),
                     f"{warm1['speedup']:,.1f}x" if warm1 else ""))
    return table(("query", "client", "window", "shape", "cold p50 ms (in F)",
                  "warm c1 p50 / p99 ms", "warm c8 p50 / p99 ms", "warm c8 req/s",
                  "player_events ms", "speed-up warm c1"), rows)


def statistics_section(result: Json | None) -> list[str]:
    if result is None:
        return [TITLE, "", NOT_MEASURED, ""]
    clients = ", ".join(f"{name} = client {number}" for name, number in result["clients"].items())
    values = "; ".join(f"client {client}: " + ", ".join(f"{k} {v}" for k, v in found.items())
                       for client, found in result["values"].items())
    return [TITLE, "", *provenance(result),
            f"Engine floor F (same run): median {ms(result['floor_ms'])} ms. Clients: "
            f"{clients}. Filter values (each client's top video, country and host): {values}. "
            "Cold: the first request of each query and client on a fresh API process; warm: "
            "new windows over the hours an earlier request read, on a process that has "
            "answered the cell before. The family keeps no answers in memory (only countries "
            "without a filter has sealed buckets), so every request reads the engine. "
            "player_events ms is the same answer counted from the raw events alone, in this "
            "process without HTTP (one query, median of its runs); speed-up is that over the "
            "warm p50.", "",
            *table(("query", "request", "reads"),
                   [(f"`{q['name']}`", f"`{q['target']}`", q["reads"])
                    for q in result["queries"]]),
            "### Per query (ranges over clients, windows and shapes)", "", *_summary(result),
            "### Every cell", "", *_every_cell(result)]
