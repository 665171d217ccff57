"""The dedup window's memory per entry (ingest/dedup.py, architecture §3), filled the way each
writer fills it: the consumer from a poll's decoded messages (`wire.decode_many`, then
`remember_keys`), the embedded batcher from events (`remember`), a refill from stored keys
(`recall`).

    python -m benchmarks.dedup_window_memory --out benchmarks/results/dedup_window_memory.json

The window has its default capacity (1,000,000) and is given 499,999 distinct events of one
client: one generation, full (a full window is two such dicts, so the same bytes per entry).
A key ends with the client's decimal digits, so clients of 2, 6 and 10 digits (the widest
UInt32) are measured (`--clients`), each as every writer fills it (`--fills`). Each fill runs
in a fresh interpreter, twice: under tracemalloc, for the bytes Python allocated that the
window still holds once its inputs are freed (keys, times, the dicts), and without it, for the
process's RSS growth once the inputs are freed and the heap trimmed (an upper bound: freed
memory left between the window's objects stays resident). With `--before COMMIT` the same
fills also run on that commit's code (its `git archive`), in the same run.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import tracemalloc
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.record import write_result

if TYPE_CHECKING:  # imported at run time from the measured code (_fill)
    from viewstats.core.events import PlayerEvent
    from viewstats.ingest.dedup import RecentEvents

REPO = Path(__file__).resolve().parent.parent
FILLS = ("consumer", "embedded", "refill")
CLIENTS = (17, 123_456, 4_294_967_295)
CAPACITY = 1_000_000
CHUNK = 10_000  # one batch of a writer
NOON_MS = 1_714_564_800_000


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _give(window: RecentEvents, fill: str, chunks: list[list[PlayerEvent]]) -> None:
    """Fill `window` as `fill`'s writer does; what it made on the way is freed on return."""
    from viewstats.ingest import wire

    if fill == "embedded":
        for chunk in chunks:
            window.remember(chunk)
        return
    for chunk in chunks:
        rows, _ = wire.decode_many([wire.encode(e) for e in chunk])
        if fill == "consumer":
            window.remember_keys(rows.keys, rows.ts_ms)
        else:  # stored_pairs gives the key as text
            window.recall([(key.decode(), ts)
                           for key, ts in zip(rows.keys, rows.ts_ms, strict=True)])


def _fill(code: Path, fill: str, client_id: int, entries: int, measure: str) -> dict[str, int]:
    """In this child process: fill a window with `code`'s modules; what it then holds."""
    sys.path.insert(0, str(code))  # before the first import of viewstats: that code's modules
    from viewstats.core.events import PlayerEvent
    from viewstats.ingest import wire
    from viewstats.ingest.dedup import RecentEvents

    window = RecentEvents(CAPACITY)
    gc.collect()
    if measure == "python":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if measure == "python" else _rss_bytes()
    events = [PlayerEvent(client_id, NOON_MS + n, "watch", "vod", "v-1", str(uuid.uuid4()),
                          "US", "site.example") for n in range(entries)]
    key_bytes = len(wire.Rows.of(events[:1]).keys[0])
    chunks = [events[start:start + CHUNK] for start in range(0, entries, CHUNK)]
    del events
    _give(window, fill, chunks)
    del chunks
    gc.collect()
    if measure == "python":
        held = tracemalloc.get_traced_memory()[0] - before
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        held = _rss_bytes() - before
    return {"entries": len(window), "bytes": held, "key_bytes": key_bytes}


def _child(code: Path, fill: str, client_id: int, entries: int, measure: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.dedup_window_memory", "--child", str(code), fill,
         str(client_id), str(entries), measure],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    measured: dict[str, int] = json.loads(done.stdout)
    return measured


def _commit(code: Path, rev: str = "HEAD") -> str:
    done = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", rev],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def _archive(commit: str, into: Path) -> None:
    """`commit`'s tree, as `git archive` gives it (its symlinked packages included)."""
    tree = subprocess.run(["git", "-C", str(REPO), "archive", commit],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        archive.extractall(into, filter="data")


def measure(sides: dict[str, tuple[str, Path]], entries: int, fills: list[str],
            clients: list[int]) -> list[dict[str, object]]:
    cells: list[dict[str, object]] = []
    for side, (commit, code) in sides.items():
        for fill in fills:
            for client_id in clients:
                python = _child(code, fill, client_id, entries, "python")
                rss = _child(code, fill, client_id, entries, "rss")
                cell: dict[str, object] = {
                    "code": side, "commit": commit, "fill": fill, "client_id": client_id,
                    "entries": python["entries"], "key_bytes": python["key_bytes"],
                    "python_bytes_per_entry": python["bytes"] / python["entries"],
                    "rss_bytes_per_entry": rss["bytes"] / rss["entries"]}
                cells.append(cell)
                print(json.dumps(cell), file=sys.stderr)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=CAPACITY // 2 - 1,
                        help=f"distinct events given to the window (default {CAPACITY // 2 - 1:,})")
    parser.add_argument("--fills", type=lambda text: text.split(","), default=list(FILLS),
                        help=f"the writers whose fill is measured (default {','.join(FILLS)})")
    parser.add_argument("--clients", type=lambda text: [int(c) for c in text.split(",")],
                        default=list(CLIENTS), help="the client ids, one fill each (default "
                        f"{','.join(map(str, CLIENTS))})")
    parser.add_argument("--before", metavar="COMMIT",
                        help="also measure this commit's code, for a before/after comparison")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        code, fill, client_id, entries, how = args.child
        print(json.dumps(_fill(Path(code), fill, int(client_id), int(entries), how)))
        return 0
    with tempfile.TemporaryDirectory(prefix="dedup-window-before-") as before:
        sides = {"after": (_commit(REPO), REPO)}
        if args.before:
            _archive(args.before, Path(before))
            sides = {"before": (_commit(REPO, args.before), Path(before)), **sides}
        result = {"entries": args.entries, "capacity": CAPACITY,
                  "cells": measure(sides, args.entries, args.fills, args.clients)}
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
