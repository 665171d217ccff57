"""The house's import rules hold: the contracts in pyproject.toml, and one namespace."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_OLD_TOP_LEVEL = re.compile(r"^\s*(from|import)\s+(ingest|query_api|schema|player)\b",
                            re.MULTILINE)


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_code_imports_the_rooms_only_through_the_viewstats_namespace() -> None:
    """`import ingest` would load a second copy of every module beside `viewstats.ingest`."""
    offenders = [f"{path.relative_to(REPO)}: {match[0].strip()}"
                 for folder in ("viewstats", "ingest", "query_api", "schema", "player",
                                "tests", "benchmarks")
                 for path in (REPO / folder).rglob("*.py") if not path.is_symlink()
                 for match in _OLD_TOP_LEVEL.finditer(path.read_text(encoding="utf-8"))]
    assert offenders == []
