"""The file one JSON-lines insert hands the embedded engine (`EmbeddedStorage.insert_json`).

The engine reads a block from a file (`INSERT ... SELECT * FROM file(...)`) at about half the
CPU of the same bytes riding inline after `FORMAT JSONEachRow` (architecture §5). Each insert
writes a file of its own, named by `mkstemp`, so no other insert ever reads it, and removes it
once the insert returned or failed. The folder lies inside the database's path: a disk that is
full or read-only for the database fails the file's write, and so the insert, as it would the
engine's own write.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from viewstats.core.storage import StorageUnavailable

log = logging.getLogger(__name__)

FOLDER = "insert_blocks"
# ClickHouse's file() reads these as a glob: a path holding one could name other files or none.
GLOB = frozenset("*?{}")


def prepare(database: Path) -> Path:
    """The folder of `database`'s block files, emptied of any a killed process left behind:
    one process owns a chDB path, so no insert of another reads them."""
    folder = database / FOLDER
    if GLOB & set(str(folder)):
        raise StorageUnavailable(f"{database}: ClickHouse's file() would read a path with any "
                                 f"of {''.join(sorted(GLOB))} in it as a glob")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise StorageUnavailable(f"cannot make {folder}: {exc}") from exc
    for left in folder.iterdir():
        try:
            left.unlink()
        except OSError as exc:  # a read-only disk: harmless, as no name is ever used twice
            log.warning("could not remove a leftover block file %s: %s", left, exc)
    return folder


@contextmanager
def block_file(folder: Path, lines: Sequence[bytes]) -> Iterator[Path]:
    """A new file in `folder` holding `lines`, one a line, for the block; removed after it.
    OSError when it cannot be written (a full or read-only disk)."""
    handle, name = tempfile.mkstemp(suffix=".jsonl", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(b"\n".join(lines))  # ENOSPC shows here or at close, both inside the try
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the disk turned read-only meanwhile; prepare() removes it
            log.warning("could not remove the insert's block file %s: %s", path, exc)
