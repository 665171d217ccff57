"""The soak's judgement (benchmarks.soak): memory and descriptors per process lifetime, the lag's
recovery after each fault, processes that exited by themselves, exactness; a verdict for each.

A lifetime is one pid of one process: a process killed and started again starts a new one. It
is warm (its caches filled) once it is `warmup_s` old and has ridden out one fault of each kind
that came while it lived, with the 30 s the platform has to recover: a fault's burst of pending
work (the requests held while the broker is away, the backlog after it) sets high-water marks
of memory that stay, and that is not growth. Its growth is then the median RSS of its last
SPAN_S seconds over that of its first SPAN_S seconds warm, and the same of the least number of
open fds in each span (client connections come and go; a leaked descriptor raises the least).
A lifetime too short for both spans is listed as not judged.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from benchmarks.report_parts import Check, Json
from benchmarks.soak_record import Row

SPAN_S = 30.0
GROWTH_TARGET = 0.05
RECOVERY_TARGET_S = 30.0
KINDS = ("broker", "consumer", "read_only")


@dataclass
class Lifetime:
    process: str
    pid: int
    rows: list[Row]

    def judge(self, warmup_s: float, faults: list[Json], platform: bool) -> Json:
        start, end = self.rows[0]["t_s"], self.rows[-1]["t_s"]
        warm = start + warmup_s
        for kind in KINDS:
            ridden = [f["ended_s"] + RECOVERY_TARGET_S for f in faults if f["kind"] == kind
                      and start <= f["started_s"] and f["ended_s"] + RECOVERY_TARGET_S <= end]
            warm = max([warm, *ridden[:1]])
        found: Json = {"process": self.process, "pid": self.pid, "platform": platform,
                       "start_s": start, "end_s": end, "warm_s": warm,
                       "judged": end - warm >= 2 * SPAN_S}
        if not found["judged"]:
            return found
        for name, of_span in (("rss_mb", statistics.median), ("fds", min),
                              ("threads", statistics.median)):
            values = [(r["t_s"], r[f"{self.process}_{name}"]) for r in self.rows]
            first = of_span(v for t, v in values if warm <= t < warm + SPAN_S)
            last = of_span(v for t, v in values if t > end - SPAN_S)
            found[name] = {"after_warmup": first, "end": last, "growth": last / first - 1}
        return found


def lifetimes(rows: list[Row], labels: tuple[str, ...]) -> list[Lifetime]:
    found: list[Lifetime] = []
    for label in labels:
        current: Lifetime | None = None
        for row in rows:
            pid = row.get(f"{label}_pid")
            if pid is None:
                current = None
                continue
            if current is None or current.pid != pid:
                current = Lifetime(label, pid, [])
                found.append(current)
            current.rows.append(row)
    return found


def recoveries(faults: list[Json], rows: list[Row], caught_up: float) -> list[Json]:
    """Per fault: the highest lag from its start to the next fault's, and how long after the
    fault ended the lag was back to `caught_up` messages or fewer, counted from its peak (a
    killed consumer's partitions wait for its session to expire: the lag rises after the kill),
    None when it was not back before the next fault or the end."""
    found = []
    for n, fault in enumerate(faults):
        end = fault["ended_s"]
        until = faults[n + 1]["started_s"] if n + 1 < len(faults) else float("inf")
        known = [r for r in rows if fault["started_s"] <= r["t_s"] < until
                 and r.get("lag") is not None]
        peak = max(known, key=lambda r: r["lag"], default=None)
        since = end if peak is None else max(end, peak["t_s"])
        back = next((r["t_s"] for r in known if r["t_s"] >= since and r["lag"] <= caught_up),
                    None)
        recovered = None if back is None else back - end
        found.append({**fault, "lag_max": None if peak is None else peak["lag"],
                      "recovered_s": recovered,
                      "met": recovered is not None and recovered <= RECOVERY_TARGET_S})
    return found


def _growth_check(what: str, key: str, judged: list[Json]) -> Check:
    target = f"{what} of each platform process grows < 5% per lifetime, once warm"
    if not judged:
        return Check(target, "no lifetime long enough to judge", None)
    worst = max(judged, key=lambda j: j[key]["growth"])
    growth = worst[key]["growth"]
    return Check(target, f"largest {growth:+.1%} ({worst['process']} pid {worst['pid']}: "
                         f"{worst[key]['after_warmup']:g} -> {worst[key]['end']:g}) over "
                         f"{len(judged)} lifetimes", growth < GROWTH_TARGET)


def checks(result: Json) -> list[Check]:
    judged = [j for j in result["lifetimes"] if j["platform"] and j["judged"]]
    found = [_growth_check("RSS", "rss_mb", judged), _growth_check("open fds", "fds", judged)]
    faults = result["faults"]
    target = (f"lag back to <= {result['caught_up_messages']:g} messages "
              f"({result['params']['caught_up_s']:g} s of traffic) within 30 s of each fault")
    if not faults:
        found.append(Check(target, "no fault injected", None))
    else:
        slow = [f for f in faults if not f["met"]]
        times = [f["recovered_s"] for f in faults if f["recovered_s"] is not None]
        text = (f"{len(faults) - len(slow)} of {len(faults)} faults; slowest back in "
                f"{max(times):.0f} s" if times else "never back")
        text += "".join(f"; {f['kind']} at {f['started_s'] / 60:.1f} min: "
                        + ("not back by the end" if f["recovered_s"] is None
                           else f"{f['recovered_s']:.0f} s") for f in slow)
        found.append(Check(target, text, not slow))
    exits = result.get("exits", [])
    found.append(Check("no platform process exits by itself (it is started again if it does)",
                       "none" if not exits else "; ".join(
                           f"{e['process']} with {e['code']} at {e['at_s'] / 60:.1f} min"
                           for e in exits), not exits))
    ex = result["exactness"]
    counted = "did not answer" if ex["api_views"] is None else f"counts {ex['api_views']:,}"
    text = f"{ex['acked']:,} acked; the API {counted}; the database "
    if "lost" not in ex:  # its rows could not be read: the view-by-view half is missing
        met = None if ex["api_views"] == ex["acked"] else False
        text += f"could not be read ({result.get('database_error')})"
    else:
        met = ex["lost"] == 0 and ex["doubled"] == 0 and ex["api_views"] == ex["acked"]
        text += (f"holds {ex['lost']:,} lost, {ex['doubled']:,} twice or more, "
                 f"{ex['never_acked']:,} never acked")
    found.append(Check("every view answered 202 counted, none twice", text, met))
    return found


def judged(result: Json, rows: list[Row], labels: tuple[str, ...], acked: set[str],
           stored: Counter[str] | None) -> Json:
    """`result` (the run's parameters, counts and faults) with the judgement's figures added:
    exactness from the views `acked` and those `stored` (how often each; None: the database
    could not be read), each fault's recovery, each lifetime of the processes `labels`, and the
    lag between faults."""
    params = result["params"]
    caught_up = params["caught_up_s"] * params["rate"]
    exactness = {"acked": len(acked), "api_views": result["api_views"]}
    if stored is not None:
        exactness.update(lost=len(acked - set(stored)),
                         doubled=sum(1 for n in stored.values() if n > 1),
                         never_acked=len(set(stored) - acked))
    result = {**result, "caught_up_messages": caught_up, "exactness": exactness}
    result["faults"] = recoveries(result["faults"], rows, caught_up)
    result["lifetimes"] = [life.judge(params["warmup_min"] * 60, result["faults"],
                                      life.process in result["platform"])
                           for life in lifetimes(rows, labels)]
    quiet = [r["lag"] for r in rows if r.get("lag") is not None and not r["fault"]
             and not any(f["started_s"] <= r["t_s"] <= f["ended_s"] + 60
                         for f in result["faults"])]
    result["lag_between_faults"] = {"median": statistics.median(quiet) if quiet else None,
                                    "max": max(quiet, default=None), "samples": len(quiet)}
    return result
