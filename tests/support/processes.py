"""Run `viewstats` commands as real OS processes, the way operators do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.geoip_fixture import shared_test_mmdb

VIEWSTATS = [sys.executable, "-m", "viewstats.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def viewstats(*args: str, env: Mapping[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIEWSTATS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, check=check)


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before serving {url}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def serving(command: str, data_dir: Path, env: Mapping[str, str] | None = None,
            log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`viewstats <command> --data-dir D --port P` until the block ends (SIGTERM, then wait).

    The server resolves countries with the shared test GeoIP database unless `env` says other.
    """
    port = free_port()
    log = log or data_dir.parent / f"{command}-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*VIEWSTATS, command, "--data-dir", str(data_dir),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "GEOIP_DB": str(shared_test_mmdb()),
                                     **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/openapi.json", proc)
        yield base, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, as an orchestrator stops a role; SIGKILL if it does not exit in `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
