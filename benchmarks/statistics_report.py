"""The statistics family's section of benchmarks/RESULTS.md, from statistics_latency.json
(benchmarks.statistics_latency): a summary per query, every cell, then the mix (beside the
previous code's, statistics_latency_previous.json, when there is one)."""

from __future__ import annotations

import statistics

from benchmarks.mix_report import mix_section
from benchmarks.report_parts import NOT_MEASURED, Check, Json, exactness, ms, provenance, table

TITLE = "## Statistics family latency (`benchmarks.statistics_latency`)"
AUDIENCE_TITLE = "## Audience endpoints latency (`benchmarks.statistics_latency`, audience run)"
UNIQS_P50_MS = 50.0  # uniqs, heaviest client, 31-day windows, repeated at concurrency 1


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
        repeated8 = _cells(result, "repeated", 8, query["name"])
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
                     _span([c["p50_ms"] for c in repeated8]) if repeated8 else NOT_MEASURED,
                     _span([c["raw_ms"] for c in warm1]),
                     _span([c["speedup"] for c in warm1], "{}x")))
    if not rows:  # a run without the warm mode
        return []
    return table(("query", "reads", "cold p50 ms", "cold p50 in F", "warm c1 p50 ms",
                  "warm c8 p50 ms", "warm c8 worst p99 ms", "warm p50 c8 / c1",
                  "warm c8 req/s", "repeated c8 p50 ms", "player_events ms",
                  "speed-up warm c1"), rows)


def _key(cell: Json) -> tuple[str, str, str]:
    return cell["client"], cell["window"], cell["shape"]


MEASURED = (("cold", 1), ("warm", 1), ("warm", 8), ("repeated", 1), ("repeated", 8))


def _every_cell(result: Json) -> list[str]:
    by_key = {(c["mode"], c["concurrency"], c["query"], *_key(c)): c for c in result["cells"]}
    rows = []
    for key in dict.fromkeys((c["query"], *_key(c)) for c in result["cells"]):
        cold, warm1, warm8, repeated1, repeated8 = (by_key.get((mode, level, *key))
                                                    for mode, level in MEASURED)
        known = next(c for c in (cold, warm1, warm8, repeated1, repeated8) if c)
        rows.append((*key, f"{ms(cold['p50_ms'])} ({cold['p50_floors']:,.1f} F)" if cold else "",
                     *(f"{ms(c['p50_ms'])} / {ms(c['p99_ms'])}" if c else ""
                       for c in (warm1, warm8, repeated1, repeated8)),
                     f"{warm8['rps']:,.0f}" if warm8 else "", ms(known["raw_ms"]),
                     f"{warm1['speedup']:,.1f}x" if warm1 else ""))
    return table(("query", "client", "window", "shape", "cold p50 ms (in F)",
                  "warm c1 p50 / p99 ms", "warm c8 p50 / p99 ms", "repeated c1 p50 / p99 ms",
                  "repeated c8 p50 / p99 ms", "warm c8 req/s", "player_events ms",
                  "speed-up warm c1"), rows)


def _comparison(result: Json, previous: Json) -> list[str]:
    """Per query and mode, the median over its cells of p50, before and after."""
    def medians(doc: Json) -> dict[tuple[str, str, int], float]:
        found: dict[tuple[str, str, int], list[float]] = {}
        for c in doc["cells"]:
            found.setdefault((c["query"], c["mode"], c["concurrency"]), []).append(c["p50_ms"])
        return {key: statistics.median(values) for key, values in found.items()}

    before, after = medians(previous), medians(result)
    rows = [(f"`{query}`", f"{mode} c{level}", ms(before[query, mode, level]),
             ms(after[query, mode, level]),
             f"{before[query, mode, level] / after[query, mode, level]:,.1f}x")
            for query in (q["name"] for q in result["queries"]) for mode, level in MEASURED
            if (query, mode, level) in before and (query, mode, level) in after]
    return ["### Before / after (`statistics_latency_previous.json`)", "",
            f"Before: the API from `{previous['api_source']}`, recorded "
            f"{previous.get('date', 'at an unrecorded date')} with "
            f"`{previous.get('command', '(command not recorded)')}`. After: "
            f"`{result.get('api_source', 'this checkout')}`. Each figure is the median over the "
            "query's cells (clients, windows, shapes) of their p50; ratio = before / after.", "",
            *table(("query", "mode", "p50 ms before", "p50 ms after", "ratio"), rows)]


def uniqs_target(result: Json) -> list[str]:
    """The issue's target for unique viewers, at the scale the run had."""
    cells = [c for c in result["cells"] if (c["query"], c["client"], c["window"], c["mode"],
                                            c["concurrency"]) == ("uniqs", "heaviest", "31d",
                                                                  "repeated", 1)]
    if not cells:
        return []
    worst = max(c["p50_ms"] for c in cells)
    events = result.get("events")
    # Data of `benchmarks.generate --heaviest-days`: its one client is heaviest, median and tail.
    alone = len(set(result["clients"].values())) == 1
    return [f"`uniqs` of the heaviest client over 31-day windows, the same request repeated at "
            f"concurrency 1: p50 {ms(worst)} ms at worst of its shapes (target: at most "
            f"{UNIQS_P50_MS:.0f} ms with 1e9 events; this data holds "
            + (f"{events:,} events" if events else "an unrecorded number of events")
            + (", of that client alone (`benchmarks.generate --heaviest-days`)" if alone else "")
            + ").", ""]


def statistics_section(result: Json | None, previous: Json | None = None,
                       title: str = TITLE) -> list[str]:
    if result is None:
        return [title, "", NOT_MEASURED, ""]
    clients = ", ".join(f"{name} = client {number}" for name, number in result["clients"].items())
    values = "; ".join(f"client {client}: " + ", ".join(f"{k} {v}" for k, v in found.items())
                       for client, found in result["values"].items())
    return [title, "", *provenance(result), *uniqs_target(result),
            f"Engine floor F (same run): median {ms(result['floor_ms'])} ms. Clients: "
            f"{clients}. Filter values (each client's top video, country and host): {values}. "
            f"API: `{result.get('api_source', 'this checkout')}`. "
            "Cold: the first request of each query and client on a fresh API process; warm: "
            "new windows over the hours an earlier request read, on a process that has "
            "answered the cell before; repeated: the cell's first window again and again on "
            "that process. player_events ms is the same answer counted from the raw events "
            "alone, in this process without HTTP (one query, median of its runs); speed-up is "
            "that over the warm p50.", "",
            *table(("query", "request", "reads"),
                   [(f"`{q['name']}`", f"`{q['target']}`", q["reads"])
                    for q in result["queries"]]),
            "### Per query (ranges over clients, windows and shapes)", "", *_summary(result),
            "### Every cell", "", *_every_cell(result),
            *(_comparison(result, previous) if previous else []),
            *mix_section(result, previous)]
