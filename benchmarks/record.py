"""What every benchmark result carries besides its numbers: the command that made it, when, and
on which machine, so that benchmarks/RESULTS.md (benchmarks.report) can quote them."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path


def command() -> str:
    """This process's command line, as one would type it (benchmarks run as `python -m`)."""
    spec = sys.modules["__main__"].__spec__
    program = ["python", "-m", spec.name] if spec is not None else [sys.argv[0]]
    return shlex.join([*program, *sys.argv[1:]])


def _proc_field(path: str, name: str) -> str | None:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def machine() -> dict[str, object]:
    """The machine and the software versions that numbers depend on."""
    import chdb  # late: loading the engine library is only worth it when a result is written

    memory_kb = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "memory_bytes": int(memory_kb.split()[0]) * 1024 if memory_kb else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "chdb": version("chdb"),
        "clickhouse_engine": str(chdb.engine_version),
    }


def write_result(path: Path, result: Mapping[str, object]) -> None:
    """Write `result` as JSON to `path`, stamped with the command, the date and the machine."""
    stamped = {**result, "command": command(),
               "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamped, indent=2) + "\n")
