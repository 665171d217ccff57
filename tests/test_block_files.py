"""The embedded engine's JSON-lines inserts go through a block file of their own
(viewstats/core/storage/block_files.py): removed whatever the insert's outcome, and a disk too
full for it fails the insert."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from tests.support.faults import full, tmpfs
from viewstats.core.events import as_row, insert_json_rows
from viewstats.core.storage import Storage, StorageError, StorageUnavailable
from viewstats.core.storage.block_files import FOLDER, block_file, prepare
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.ingest import wire

NOON = 1_714_564_800_000


def _blocks(storage: Storage) -> list[Path]:
    assert isinstance(storage, EmbeddedStorage)
    return sorted((storage.path / FOLDER).glob("*.jsonl"))


def _insert(storage: Storage, lines: list[bytes], client_id: int) -> int:
    return insert_json_rows(storage, lines, {client_id}, (NOON, NOON), {"insert_deduplicate": 0})


def _stored(storage: Storage, client_id: int) -> int:
    rows = storage.query("SELECT count() FROM player_events WHERE client_id = {c:UInt32}",
                         {"c": client_id})
    return int(rows[0][0])


@pytest.mark.chdb
def test_the_block_file_is_removed_after_a_stored_block(storage: Storage) -> None:
    client_id = fresh_client_id()
    rows = wire.Rows.of([watch(client_id, NOON + i, "DE", i) for i in range(3)])
    assert _insert(storage, rows.lines, client_id) == 3
    assert _stored(storage, client_id) == 3
    assert _blocks(storage) == []


@pytest.mark.chdb
def test_the_block_file_is_removed_after_a_refused_block(storage: Storage) -> None:
    client_id = fresh_client_id()
    bad = orjson.dumps({**as_row(watch(client_id, NOON, "DE", 1)), "event": "pause"})
    with pytest.raises(StorageError):
        _insert(storage, [bad], client_id)
    assert _stored(storage, client_id) == 0
    assert _blocks(storage) == []


@pytest.mark.chdb
@pytest.mark.faults
def test_a_disk_too_full_for_the_block_file_fails_the_insert(
        storage: Storage, fault_root: None) -> None:
    assert isinstance(storage, EmbeddedStorage)
    client_id = fresh_client_id()
    rows = wire.Rows.of([watch(client_id, NOON + i, "DE", i) for i in range(200)])
    with tmpfs(storage.path / FOLDER, size_mb=1) as folder, full(folder):
        with pytest.raises(StorageError, match="No space left"):
            _insert(storage, rows.lines, client_id)
        assert storage.health.failing
        assert _blocks(storage) == []
    assert _stored(storage, client_id) == 0
    assert _insert(storage, rows.lines, client_id) == 200  # the folder is the disk's again


def _fail_inside(folder: Path) -> None:
    with block_file(folder, [b"{}", b"{}"]) as path:
        assert path.read_bytes() == b"{}\n{}"
        raise RuntimeError("the engine refused it")


def test_a_block_file_is_removed_when_its_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="refused"):
        _fail_inside(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_files_a_killed_process_left_are_removed_at_the_start(tmp_path: Path) -> None:
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "tmp1234.jsonl").write_bytes(b"{}")
    assert list(prepare(tmp_path).iterdir()) == []


def test_a_path_file_would_read_as_a_glob_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="glob"):
        prepare(tmp_path / "data-{a,b}")
