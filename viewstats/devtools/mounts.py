"""Real storage faults by mounting (root and util-linux `mount`): for the fault tests
(tests/support/faults.py) and the soak benchmark (benchmarks/soak.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def run(*command: str) -> None:
    """Run `command`; RuntimeError with its stderr when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()}")


def mount(*args: str) -> None:
    run("mount", *args)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only for the block, under processes that have it open: a read-only bind
    mount over it."""
    mount("--bind", str(path), str(path))
    try:
        # EBUSY while the engine holds a file open for writing through the new mount.
        for attempt in range(100):
            try:
                mount("-o", "remount,bind,ro", str(path))
                break
            except RuntimeError:
                if attempt == 99:
                    raise
                time.sleep(0.05)
        yield
    finally:
        run("umount", str(path))
