"""Run `viewstats` roles as real OS processes, the way operators do, and wait until they serve.

Stdlib only: viewstats.devtools.kafka_broker uses it before anything is installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from viewstats.ingest.collector.viewer_key import create_secret_file

VIEWSTATS = [sys.executable, "-m", "viewstats.cli"]
START_TIMEOUT = 60.0


class NotServing(RuntimeError):
    """A server exited, or did not answer in time, before it served."""


def free_port(preferred: int | None = None) -> int:
    """A port of 127.0.0.1 that nothing listens on: `preferred` when free, else the OS's pick."""
    with socket.socket() as sock:
        if preferred:
            # As uvicorn binds: a port whose last connections are still in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", preferred))
                return preferred
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, exit_code: Callable[[], int | None],
                  timeout: float = START_TIMEOUT) -> None:
    """Return once `url` answers with any status; NotServing when the server's `exit_code()`
    is set first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (code := exit_code()) is not None:
            raise NotServing(f"server exited with {code} before serving {url}")
        if _answers(url):
            return
        time.sleep(0.1)
    raise NotServing(f"{url} did not answer within {timeout:g} s")


def _answers(url: str) -> bool:
    try:
        # Callers pass the http:// address of a server they started.
        with urllib.request.urlopen(url, timeout=1.0):  # noqa: S310
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def serving(role: str, data_dir: Path, *, port: int | None = None,
            env: Mapping[str, str] | None = None, log: Path | None = None,
            cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`viewstats <role> --data-dir D` on 127.0.0.1 until the block ends, then `stop`.

    Yields its base URL and process once it answers (NotServing when it does not). `port`
    defaults to a free one, `env` is added to this process's environment, and the output goes
    to `log` (default: <role>-<port>.log beside `data_dir`). `cwd` is where it starts: `-m`
    imports from there first, so another checkout's folder runs that checkout's code.

    A collector beside Kafka or a ClickHouse server needs a provisioned viewer key file; unless
    VIEWER_KEY_FILE names one, it reads <data_dir's parent>/viewer-key, made if missing, which
    every role started beside it shares as a platform's collectors do.
    """
    port = port or free_port()
    log = log or data_dir.parent / f"{role}-{port}.log"
    environment = {**os.environ, **(env or {})}
    if role in ("run", "collector") and not environment.get("VIEWER_KEY_FILE") and (
            environment.get("KAFKA_BOOTSTRAP_SERVERS") or environment.get("CLICKHOUSE_URL")):
        environment["VIEWER_KEY_FILE"] = str(shared_viewer_key(data_dir.parent))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*VIEWSTATS, role, "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=environment,
            cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/openapi.json", proc.poll)
        yield base, proc
    finally:
        stop(proc)


def shared_viewer_key(folder: Path) -> Path:
    """<folder>/viewer-key, made if missing: the secret of the collectors started there."""
    path = folder / "viewer-key"
    create_secret_file(path)
    return path


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, as an orchestrator stops a role (it flushes and exits cleanly); SIGKILL if it
    does not exit in `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
