"""The chDB database for tests: one per test session, since a process can hold one chDB path."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.markers import require_marker
from viewstats.core.rollups import RAW_TABLE, rollup_tables
from viewstats.core.storage import Storage
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.core.write_announcements import announcing_rewrite
from viewstats.schema.migrations import migrate

ROLLUP_TABLES = (RAW_TABLE, *rollup_tables())  # every table an event is counted in
_client_ids = itertools.count(100_000)


def fresh_client_id() -> int:
    """A client id no other test in this session uses, so tests sharing the database stay apart."""
    return next(_client_ids)


def truncate_events(storage: Storage) -> None:
    with announcing_rewrite(storage):
        for table in ROLLUP_TABLES:
            storage.command(f"TRUNCATE TABLE {table}")


@pytest.fixture(scope="session")
def _session_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    path: Path = tmp_path_factory.mktemp("chdb") / "clickhouse"
    storage = EmbeddedStorage(path, pool_size=4)
    migrate(storage)
    yield storage
    storage.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    require_marker(item, "chdb", frozenset({"storage", "_session_storage"}),
                   "touches the database")


@pytest.fixture
def storage(_session_storage: Storage) -> Storage:
    """The migrated test database; only tests marked `chdb` may use it."""
    return _session_storage
