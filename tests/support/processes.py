"""Run `viewstats` commands as real OS processes, the way operators do, for the tests.

The process handling is viewstats.devtools.processes; what is the tests' own is the default
GeoIP database of the servers they start.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.geoip_fixture import shared_test_mmdb
from viewstats.devtools import processes
from viewstats.devtools.processes import VIEWSTATS


def viewstats(*args: str, env: Mapping[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIEWSTATS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, check=check)


@contextmanager
def serving(command: str, data_dir: Path, env: Mapping[str, str] | None = None,
            log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`viewstats <command> --data-dir D --port P` until the block ends (SIGTERM, then wait).

    The server resolves countries with the shared test GeoIP database unless `env` says other.
    """
    with processes.serving(command, data_dir, log=log,
                           env={"GEOIP_DB": str(shared_test_mmdb()), **(env or {})}) as served:
        yield served
