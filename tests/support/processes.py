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

import httpx

from tests.support.api import COUNTRIES
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
    Its embedded writer lingers 50 ms (the batch delay before EMBEDDED_LINGER_MS), not the
    default second: tests send beacons one after the other, and the linger trades latency for
    CPU, which no test weighs.
    """
    defaults = {"GEOIP_DB": str(shared_test_mmdb()), "EMBEDDED_LINGER_MS": "50"}
    with processes.serving(command, data_dir, log=log, env={**defaults, **(env or {})}) as served:
        yield served


def key_token(data_dir: Path, client_id: int) -> str:
    """A token from `viewstats keys create`, as an operator makes one (its last line)."""
    created = viewstats("keys", "create", "--client-id", str(client_id),
                        "--data-dir", str(data_dir))
    return created.stdout.strip().splitlines()[-1]


def total_views(base: str, token: str) -> int:
    """Every view the key's client has, from the served countries endpoint."""
    response = httpx.get(base + COUNTRIES, headers={"Authorization": f"apikey {token}"},
                         params={"date_from": "2020-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200, response.text
    return sum(row["views"] for row in response.json()["data"])
