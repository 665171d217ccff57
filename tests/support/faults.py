"""Real storage faults for tests: a read-only bind mount (viewstats.devtools.mounts, shared with
the soak benchmark) and a full tmpfs (root and `mount`).

Tests using these are marked `faults`; CI runs as root. Without root they fail, naming why,
rather than skip: a skipped fault test would hide the very loss it exists to catch.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.markers import require_marker
from viewstats.devtools.mounts import mount, run


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("fault tests mount file systems and need root (CI runs as root); "
                    "deselect them with -m 'not faults'", pytrace=False)


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path))
    try:
        yield path
    finally:
        run("umount", "--lazy", str(path))


@contextmanager
def full(path: Path) -> Iterator[None]:
    """The file system holding `path` kept full to its last byte for the block.

    The engine can free space while the disk is full (a failed merge removes its temporary
    part), and a write that fits there would end the fault early; a thread takes any freed
    space back at once.
    """
    filler = path / "filler"
    stop = threading.Event()

    def fill() -> None:
        with open(filler, "ab", buffering=0) as out:
            while True:
                try:
                    while os.statvfs(path).f_bavail:
                        out.write(bytes(1 << 16))
                except OSError:
                    pass  # ENOSPC: full, as meant
                if stop.wait(0.02):
                    return

    filler_thread = threading.Thread(target=fill, daemon=True)
    filler_thread.start()
    try:
        deadline = time.monotonic() + 60
        while os.statvfs(path).f_bavail:
            assert time.monotonic() < deadline, f"{path} did not fill up"
            time.sleep(0.05)
        yield
    finally:
        stop.set()
        filler_thread.join(timeout=30)
        filler.unlink()


class BeaconStream:
    """Threads posting one new `watch` per request, as players do, until stopped.

    `acked` holds the view ids answered 202; `refused` counts 503s, which must carry
    Retry-After. Other answers, and requests that got none within `timeout` seconds, are
    recorded in `unexpected`; `slowest` is the longest a request waited for its answer.

    With `resend_refused`, a thread resends a refused beacon with the same body after the
    Retry-After, as the player does, until it is answered 202, also once the stream stops: a
    503 may come from a collector whose broker later stored the events anyway, and the writer
    then counts the view once. Without it, a refused view is dropped (nothing of it may count).
    """

    def __init__(self, base: str, client_id: int, threads: int = 4, *,
                 resend_refused: bool = False, timeout: float = 30) -> None:
        self.acked: set[str] = set()
        self.refused = 0
        self.unexpected: list[str] = []
        self.slowest = 0.0
        self._base, self._client_id = base, client_id
        self._resend, self._timeout = resend_refused, timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, daemon=True)
                         for _ in range(threads)]

    def __enter__(self) -> BeaconStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        deadline = time.monotonic() + 60
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _send(self) -> None:
        view: str | None = None  # a refused view this thread still resends
        with httpx.Client(base_url=self._base, timeout=self._timeout) as http:
            while view is not None or not self._stop.is_set():
                view = view or str(uuid.uuid4())
                started = time.monotonic()
                try:
                    response = http.post("/events", json={
                        "event": "watch", "client_id": self._client_id, "video_id": "v-1",
                        "type": "vod", "view_id": view})
                except httpx.TransportError as exc:  # no answer: it may have been stored
                    with self._lock:
                        self.unexpected.append(repr(exc))
                    view = view if self._resend else None
                    continue
                waited = time.monotonic() - started
                retry_after = response.headers.get("retry-after")
                with self._lock:
                    self.slowest = max(self.slowest, waited)
                    if response.status_code == 202:
                        self.acked.add(view)
                        view = None
                    elif response.status_code == 503 and retry_after is not None:
                        self.refused += 1
                    else:
                        self.unexpected.append(f"{response.status_code} {response.text}")
                if view is not None and not (response.status_code == 503 and self._resend):
                    view = None
                if view is not None:
                    time.sleep(float(retry_after or 1))

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self.acked), self.refused


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    require_marker(item, "faults", frozenset({"fault_root"}), "mounts file systems")


@pytest.fixture
def fault_root() -> None:
    """Root, to mount; only tests marked `faults` may use it."""
    require_root()
