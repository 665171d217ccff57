"""The mix and settle modes' part of a query benchmark's section of benchmarks/RESULTS.md
(benchmarks.mix, benchmarks.settle), this run beside the previous code's when there is one."""

from __future__ import annotations

from benchmarks.mix import CONCURRENCY, WHOLE
from benchmarks.report_parts import NOT_MEASURED, Json, ms, table

ALL = "all"
Cells = dict[tuple[str, str, str, int], Json]  # (run, class, endpoint, concurrency) -> cell


def _ms(value: float | None) -> str:
    return "-" if value is None else ms(value)


def _cells(result: Json | None) -> Cells:
    mixed = (result or {}).get("mix")
    return {} if mixed is None else {
        (c["run"], c["class"], c["endpoint"], c["concurrency"]): c for c in mixed["cells"]}


Key = tuple[str, str, str]  # a cell's (run, class, endpoint)


def _rows_of_class(classes: list[str], endpoint: str = ALL) -> list[tuple[str, Key]]:
    """Each row's name and cells: each class's own run, then the whole mix's."""
    return [(name, (name, name, endpoint)) for name in classes] + [
        (f"whole {WHOLE}", (WHOLE, ALL, endpoint))]


def _at(cells: Cells, key: Key, concurrency: int) -> Json | None:
    return cells.get((*key, concurrency))


def _by_class(mixed: Json, cells: Cells) -> list[str]:
    header = ["class"]
    for level in CONCURRENCY:
        header += [f"c{level} p50 ms", f"c{level} p99 ms", f"c{level} answers/s"]
    header += ["refused (429) c1 / c8 / c32"]
    rows = []
    for name, key in _rows_of_class(mixed["classes"]):
        row: list[object] = [name]
        found = [_at(cells, key, level) for level in CONCURRENCY]
        for cell in found:
            row += ([_ms(cell["p50_ms"]), _ms(cell["p99_ms"]), f"{cell['rps']:,.0f}"] if cell
                    else ["", "", ""])
        row.append(" / ".join(str(c["refused"]) if c else "" for c in found))
        rows.append(row)
    return table(header, rows)


def _before_after(mixed: Json, cells: Cells, before: Cells, endpoint: str) -> list[str]:
    rows = []
    for name, key in _rows_of_class(mixed["classes"], endpoint):
        old, new = _at(before, key, 8), _at(cells, key, 8)
        old32, new32 = _at(before, key, 32), _at(cells, key, 32)
        if not (old and new):
            continue
        rows.append((name, _ms(old["p50_ms"]), _ms(new["p50_ms"]), _ms(old["p99_ms"]),
                     _ms(new["p99_ms"]), f"{old['rps']:,.0f}", f"{new['rps']:,.0f}",
                     f"{old32['rps']:,.0f}" if old32 else "",
                     f"{new32['rps']:,.0f}" if new32 else ""))
    return table(("class", "c8 p50 ms before", "after", "c8 p99 ms before", "after",
                  "c8 answers/s before", "after", "c32 answers/s before", "after"), rows)


def _by_endpoint(mixed: Json, cells: Cells, before: Cells) -> list[str]:
    """Concurrency 8, each endpoint in each class's run and in the whole mix."""
    rows = []
    for endpoint in mixed["endpoints"]:
        for name, key in _rows_of_class(mixed["classes"], endpoint["name"]):
            new, old = _at(cells, key, 8), _at(before, key, 8)
            if new is None:
                continue
            sides = [_ms(new["p50_ms"]), _ms(new["p99_ms"])]
            if before:
                sides = [_ms(old["p50_ms"]) if old else "", sides[0],
                         _ms(old["p99_ms"]) if old else "", sides[1]]
            rows.append((f"`{endpoint['name']}`", endpoint["reads"], name, *sides,
                         new["requests"]))
    header = (("p50 ms before", "after", "p99 ms before", "after") if before
              else ("p50 ms", "p99 ms"))
    return table(("endpoint", "reads", "class", *header, "answers"), rows)


def _settle(result: Json, previous: Json | None) -> list[str]:
    settled, old = result.get("settle"), (previous or {}).get("settle")
    lines = ["#### settle", "",
             "A fresh API process meets the client (one request per endpoint) and is at once "
             "asked the whole mix at concurrency 8; per second of that run: the answers, their "
             "p50, and the sealed buckets the API keeps (`viewstats_sealed_bytes`, read from "
             "its /metrics at the second's end).", ""]
    if settled is None:
        return [*lines, NOT_MEASURED, ""]
    before = {row["second"]: row for row in old["per_second"]} if old else {}

    def side(row: Json | None) -> list[str]:
        if row is None:
            return ["", "", ""]
        sealed = row.get("sealed_bytes")
        return [str(row["answers"]), _ms(row["p50_ms"]),
                "-" if sealed is None else f"{sealed / 2**20:,.1f}"]

    names = ["answers", "p50 ms", "sealed MiB"]
    header = ["second", *(f"{n} before" for n in names), *(f"{n} after" for n in names)] if old \
        else ["second", *names]
    rows = [(row["second"], *(side(before.get(row["second"])) if old else []), *side(row))
            for row in settled["per_second"]]
    return [*lines, *table(header, rows)]


def mix_section(result: Json, previous: Json | None) -> list[str]:
    """The mix's tables: by class at every concurrency, before/after, by endpoint, settle."""
    lines = ["### mix", ""]
    mixed = result.get("mix")
    if mixed is None:
        return [*lines, NOT_MEASURED, "", *_settle(result, previous)]
    cells, before = _cells(result), _cells(previous)
    endpoints = ", ".join(f"`{e['target']}`" for e in mixed["endpoints"])
    lines += [f"One client, the {mixed['who']} (client {mixed['client_id']}), asked windows never "
              f"asked before, 1 to 365 days at random over the data, in five classes: "
              f"{', '.join(mixed['classes'])} (zone days at {', '.join(mixed['zones'])}); the "
              f"endpoints in turn: {endpoints}; `Accept-Encoding: gzip`. Met first: one request "
              f"per endpoint, then {mixed['meet_seconds']:g} s idle. Each class has a run of "
              f"its own at each concurrency, then the whole mix (classes in equal numbers); a "
              f"run lasts {mixed['seconds_per_run']:g} s or until its windows run out. Latency "
              f"and answers/s count the 200s; refused: 429s of the client's query budget "
              f"(`QUERY_CLIENT_CONCURRENCY` + `QUERY_QUEUE_DEPTH` of one client's requests at "
              f"once). {mixed['checked']:,} of the answers timed were checked against "
              f"`player_events` (one that differed would show in the targets above). "
              f"F = {ms(result['floor_ms'])} ms.", "", *_by_class(mixed, cells)]
    if previous is not None and before:
        lines += [f"Before (`{previous['api_source']}`, recorded {previous.get('date')}) and "
                  "after (this run), every endpoint together:", "",
                  *_before_after(mixed, cells, before, ALL)]
    if len(mixed["endpoints"]) > 1:
        lines += ["By endpoint, concurrency 8:", "", *_by_endpoint(mixed, cells, before)]
    return [*lines, *_settle(result, previous)]
