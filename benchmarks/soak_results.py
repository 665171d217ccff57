"""The soak's plot (RSS, lag and p99 over time, the faults marked) and its section of
benchmarks/RESULTS.md (benchmarks.report), from a result of benchmarks.soak."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from benchmarks.report_parts import NOT_MEASURED, Json, duration, provenance, table
from benchmarks.soak_record import Row
from benchmarks.soak_report import checks

REPO = Path(__file__).resolve().parents[1]
COLORS = {"broker": "tab:red", "consumer": "tab:purple", "read_only": "tab:orange"}


def plot(result: Json, rows: list[Row], path: Path) -> None:
    figure = Figure(figsize=(11, 8), layout="constrained")
    rss, lag, p99 = figure.subplots(3, 1, sharex=True)
    minutes = [r["t_s"] / 60 for r in rows]
    for label in result["platform"]:
        rss.plot(minutes, [r.get(f"{label}_rss_mb") for r in rows], label=label)
    rss.set_ylabel("RSS (MB)")
    rss.legend(loc="upper left", fontsize="small")
    lag.plot(minutes, [r.get("lag") for r in rows], color="tab:blue")
    lag.set_ylabel("consumer lag (messages)")
    p99.plot(minutes, [r.get("p99_ms") for r in rows], color="tab:green")
    p99.set_ylabel(f"answer p99 (ms, last {result['params']['p99_window_s']:g} s)")
    p99.set_yscale("log")  # a fault's seconds would flatten the quiet minutes
    p99.set_xlabel("minutes")
    for fault in result["faults"]:
        start = fault["started_s"] / 60
        restart = (fault.get("restart_from_s") or fault["ended_s"]) / 60
        restarted = restart + (fault["restart_s"] or 0) / 60
        for axes in (rss, lag, p99):  # the fault, then the broker's or process's start
            axes.axvline(start, color=COLORS[fault["kind"]], lw=1)
            axes.axvspan(start, restart, alpha=0.3, color=COLORS[fault["kind"]], lw=0)
            axes.axvspan(restart, restarted, alpha=0.12, color=COLORS[fault["kind"]], lw=0)
        rss.annotate(fault["kind"], (fault["started_s"] / 60, 1), xycoords=("data", "axes "
                     "fraction"), fontsize="x-small", va="top", rotation=90)
    for gone in result.get("exits", []):  # a process that ended by itself
        for axes in (rss, lag, p99):
            axes.axvline(gone["at_s"] / 60, color="black", lw=1, ls="--")
        rss.annotate(f"{gone['process']} exit {gone['code']}", (gone["at_s"] / 60, 0.5),
                     xycoords=("data", "axes fraction"), fontsize="x-small", rotation=90)
    figure.suptitle(f"soak, {result['topology']}: {result['params']['rate']:g} beacons/s, "
                    f"a fault every {result['params']['fault_every_min']:g} min")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


def _lifetime_row(j: Json) -> tuple[Any, ...]:
    span = f"{j['start_s'] / 60:.1f}-{j['end_s'] / 60:.1f}, warm at {j['warm_s'] / 60:.1f}"
    role = j["process"] + ("" if j["platform"] else " (test infrastructure: no target)")
    if not j["judged"]:
        return (role, j["pid"], span, "too short to judge", "", "")
    return (role, j["pid"], span, *(f"{j[k]['after_warmup']:.{d}f} -> {j[k]['end']:.{d}f} "
                                    f"({j[k]['growth']:+.1%})" for k, d in (("rss_mb", 1),
                                                                             ("fds", 0),
                                                                             ("threads", 0))))


def section(result: Json, out: Path) -> list[str]:
    """The soak's section of a Markdown report written to `out`."""
    p = result["params"]
    lines = [f"## Soak, `{result['topology']}`, {p['minutes']:g} min (`benchmarks.soak`)", "",
             *provenance(result),
             # What the machine did besides, which the soak cannot see (e.g. other work
             # sharing its cores), as the one who ran it wrote it into the result.
             *([result["conditions"], ""] if "conditions" in result else []),
             f"{duration(p['minutes'] * 60)} of {p['rate']:g} beacons/s and {p['query_rate']:g} "
             f"questions/s; a fault every {p['fault_every_min']:g} min in turn (broker SIGKILLed "
             f"for {p['outage_s']:g} s, consumer killed -9 and restarted, data dir read-only for "
             f"{p['outage_s']:g} s). A lifetime is warm once {p['warmup_min']:g} min old and "
             "through one fault of each kind that came while it lived, plus 30 s.", ""]
    lines += table(("target", "measured", "verdict"),
                   [(c.target, c.measured, c.verdict) for c in checks(result)])
    lines += ["### Per process lifetime", ""]
    lines += table(("process", "pid", "minutes", "RSS MB", "open fds", "threads"),
                   [_lifetime_row(j) for j in result["lifetimes"]])
    b, q, lag = result["beacons"], result["queries"], result["lag_between_faults"]
    lines += [f"Beacons: {b['sent']:,} views sent, {b['acked']:,} answered 202; resends by "
              f"cause ({_counts(b['resent'])}); {b['unresolved']} never answered 202, "
              f"{len(b['unexpected'])} refused for good. Questions by answer "
              f"({_counts(q['statuses'])}). Lag between faults: median {lag['median']}, at "
              f"most {lag['max']} messages.", ""]
    if result.get("exits"):
        lines += ["### Processes that exited by themselves", ""]
        lines += table(("process", "at min", "exit code", "log"),
                       [(e["process"], f"{e['at_s'] / 60:.1f}", e["code"], f"`{e['log']}`")
                        for e in result["exits"]])
    lines += ["### Faults", ""]
    lines += ["The lag is back when it is at most the caught-up level again after its peak; "
              "counted from the fault's end: the broker answering again, the killed process "
              "being started again, the mount removed.", ""]
    lines += table(("fault", "at min", "lasted s", "restart s", "max lag", "lag back after s"),
                   [(f["kind"] + (f" (failed: {f['error']})" if f["error"] else ""),
                     f"{f['started_s'] / 60:.1f}", f"{f['ended_s'] - f['started_s']:.0f}",
                     "-" if f["restart_s"] is None else f"{f['restart_s']:.1f}",
                     f["lag_max"], "not back" if f["recovered_s"] is None
                     else f"{f['recovered_s']:.0f}") for f in result["faults"]])
    if result.get("plot"):
        image = Path(result["plot"])
        image = image if image.is_absolute() else REPO / image
        lines += [f"![soak {result['topology']}]"
                  f"({os.path.relpath(image, out.resolve().parent)})", ""]
    return lines


def sections(results: list[Json], out: Path) -> list[str]:
    """The soaks' sections of benchmarks/RESULTS.md (benchmarks.report), `server` first."""
    if not results:
        return ["## Soak (`benchmarks.soak`)", "", NOT_MEASURED, ""]
    ordered = sorted(results, key=lambda r: (r["topology"] != "server", r["topology"]))
    return [line for result in ordered for line in section(result, out)]


def _counts(counted: dict[str, int]) -> str:
    """{"503": 7, "no answer": 2} as "HTTP 503: 7; no answer: 2"."""
    return "; ".join(f"{'HTTP ' if what.isdigit() else ''}{what}: {n:,}"
                     for what, n in sorted(counted.items())) or "none"
