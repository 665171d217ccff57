"""The collector's sinks in benchmarks/RESULTS.md (benchmarks.report), from the
collector_sink_*.json results of `benchmarks.collector_throughput --sink`: closed loop per sink,
then open loop per sink and arrival rate, each run's code (this checkout, or the
`--before` checkout it also ran) named, so that old and new sit side by side."""

from __future__ import annotations

from typing import Any

from benchmarks.report_parts import NOT_MEASURED, Json, ms, provenance, table

THIS = "this checkout"


def _code(result: Json) -> str:
    return str(result.get("server_source", THIS))


def _order(result: Json) -> tuple[bool, str, bool]:
    """Counting first, then by sink; each sink's previous code before this checkout's."""
    return result["sink"] != "counting", result["sink"], _code(result) == THIS


def _cpus(result: Json) -> str:
    """The server's CPUs / the load generator's."""
    if "server_cpus" not in result:
        return "-"
    return f"{','.join(map(str, result['server_cpus']))} / " \
        f"{','.join(map(str, result['client_cpus']))}"


def _latency(value: Any) -> str:
    if value is None:
        return "beyond the run"
    return "-" if not isinstance(value, int | float) else ms(value)


def _per_beacon(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _others(answers: Any) -> str:
    if isinstance(answers, dict):
        return ", ".join(f"{count} {name}" for name, count in answers.items()) or "0"
    return str(answers)


def section(results: list[Json]) -> list[str]:
    lines = ["### Through its sinks (`--sink`)", ""]
    if not results:
        return [*lines, NOT_MEASURED, ""]
    results = sorted(results, key=_order)

    def ratio(result: Json) -> str:
        # Only against the counting sink of the same run (one command, rounds alternated): the
        # machine's load changes between runs more than the sinks differ.
        counting = next((r for r in results if r["sink"] == "counting"
                         and r["command"] == result["command"]), None)
        if counting is None:
            return "-"
        return f"{result['beacons_per_cpu_second'] / counting['beacons_per_cpu_second']:.2f}x"

    def spread(result: Json) -> str:
        rounds = [r["beacons_per_cpu_second"] for r in result["rounds"]]
        return f"{min(rounds):,.0f}-{max(rounds):,.0f}"

    lines += ["The collector as `viewstats collector` serves it, one worker: over a sink that "
              "only counts, into Kafka with acks=all (a single-node broker on the same machine, "
              "so all in-sync replicas is one, and its CPU is not the server's), into the "
              "embedded chDB (its inserts are the server's CPU), and as `viewstats run` "
              "(`run`). CPUs: the server's / the load generator's, one each, or every CPU for "
              "both (`--share-cpus`, as a user's small machine runs them). Rounds alternate the "
              "sinks, so that a machine whose load changes affects each alike; the ratio to the "
              "counting sink of the same run compares them. Code: the checkout whose server "
              "ran (`--before`: the previous code, in the same run).", "",
              "#### Closed loop (each connection sends when its last beacon is answered)", ""]
    for command in dict.fromkeys(r["command"] for r in results):
        lines += provenance(next(r for r in results if r["command"] == command))
    lines += table(
        ("sink", "seconds", "beacons/s", "server CPU", "beacons per CPU-second",
         "per round", "of the counting sink's", "answers not 202",
         "client processes x connections", "CPU ms per beacon", "p50 ms", "p99 ms",
         "load generator CPU", "CPUs", "code"),
        [(r["sink"], f"{r['seconds']:.1f}", f"{r['beacons_per_s']:,.0f}",
          f"{r['server_cpu_cores']:.0%}", f"{r['beacons_per_cpu_second']:,.0f}", spread(r),
          ratio(r), r["non_202_answers"], f"{r['client_processes']} x "
          f"{r['connections_per_client']}", _per_beacon(r.get("server_cpu_ms_per_beacon")),
          _latency(r.get("p50_ms")), _latency(r.get("p99_ms")),
          f"{r['client_cpu_cores']:.0%}" if "client_cpu_cores" in r else "-", _cpus(r), _code(r))
         for r in results])
    return [*lines, *_open_loop(results)]


def _open_loop(results: list[Json]) -> list[str]:
    lines = ["#### Open loop (`--rate`: beacons sent at a fixed rate, answered or not)", ""]
    rows = [(r, rate) for r in results for rate in r.get("open_loop", [])]
    if not rows:
        return [*lines, NOT_MEASURED, ""]
    lines += ["Latency counts from each beacon's scheduled send, so a server that falls behind "
              "shows it; \"beyond the run\": more than that share of the beacons had no answer "
              "when the run ended. The generator's lateness is its own (a busy machine's "
              "wake-ups, or a generator that cannot keep up: **behind** when its p99 is over "
              "10 ms).", ""]
    return [*lines, *table(
        ("sink", "offered beacons/s", "answered 202 /s", "server CPU", "CPU ms per beacon",
         "p50 ms", "p99 ms", "not 202", "generator late p99 / max ms", "load generator CPU",
         "connections at most", "CPUs", "code"),
        [(r["sink"], f"{o['offered_per_s']:,.0f}", f"{o['beacons_per_s']:,.0f}",
          f"{o['server_cpu_cores']:.0%}", _per_beacon(o["server_cpu_ms_per_beacon"]),
          _latency(o["p50_ms"]), _latency(o["p99_ms"]), _others(o["non_202_answers"]),
          f"{ms(o['generator_lag_p99_ms'])} / {ms(o['generator_lag_max_ms'])}"
          f"{' **behind**' if o['behind'] else ''}", f"{o['client_cpu_cores']:.0%}",
          o.get("peak_connections", "-"), _cpus(r), _code(r))
         for r, o in rows])]
