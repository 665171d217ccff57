"""The pieces every section of benchmarks/RESULTS.md is written with (benchmarks.report and
benchmarks.statistics_report): a checked target, numbers as text, a Markdown table and where a
result came from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    met: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return NOT_MEASURED if self.met is None else "met" if self.met else "**missed**"


def exactness(target: str, result: Json | None) -> Check:
    """Whether every answer a query benchmark checked equalled its count from player_events."""
    if result is None:
        return Check(target, NOT_MEASURED, None)
    wrong: list[str] = result["mismatches"]
    if not wrong:
        rows = (f" ({result['checked_nonempty']:,} of them with rows)"
                if "checked_nonempty" in result else "")
        return Check(target, f"all {result['checked']:,} checked answers equal{rows}", True)
    return Check(target, f"{len(wrong)} differ or failed ({result['checked']:,} answers "
                 f"checked), e.g. {'; '.join(wrong[:3])}", False)


def ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def duration(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def machine_text(recorded: object) -> str:
    if not isinstance(recorded, dict):
        return str(recorded)  # a benchmark that records only a summary line
    memory = recorded["memory_bytes"]
    return (f"{recorded['cpus']} CPUs ({recorded['cpu_model']}), "
            f"{f'{memory / 2**30:.1f} GiB' if memory else 'memory unknown'}, "
            f"{recorded['kernel']}, Python {recorded['python']}, chDB {recorded['chdb']} "
            f"(ClickHouse {recorded['clickhouse_engine']})")


def provenance(result: Json) -> list[str]:
    lines = [f"Recorded {result.get('date', 'at an unrecorded date')} with:", "",
             f"    {result.get('command', '(command not recorded)')}", ""]
    if "machine" in result:
        lines += [f"on {machine_text(result['machine'])}.", ""]
    if "load_average" in result:  # the machine is shared: how busy it was moves every figure
        start, end = result["load_average"]["start"], result["load_average"]["end"]
        lines += [f"The run took {duration(result['run_seconds'])}; load average (1, 5, 15 min) "
                  f"{' / '.join(f'{v:.2f}' for v in start)} at its start, "
                  f"{' / '.join(f'{v:.2f}' for v in end)} at its end.", ""]
    return lines
