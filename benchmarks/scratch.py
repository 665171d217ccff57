"""A fresh database for a benchmark that writes or reads its own data: chDB in a temporary
directory, or a new database on the server (dropped afterwards). The engine's module is
imported only here, so a server run never loads it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from viewstats.core.storage import Storage


@contextmanager
def scratch_storage(clickhouse_url: str | None, name: str, pool_size: int) -> Iterator[Storage]:
    if clickhouse_url is None:
        from viewstats.core.storage.embedded import EmbeddedStorage
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as data:
            embedded = EmbeddedStorage(Path(data) / "clickhouse", pool_size)
            try:
                yield embedded
            finally:
                embedded.close()
        return
    from viewstats.core.storage.clickhouse_server import ServerStorage
    database = f"bench_{uuid.uuid4().hex[:12]}"
    admin = ServerStorage(clickhouse_url)
    admin.command(f"CREATE DATABASE {database}")
    try:
        server = ServerStorage(f"{clickhouse_url.rstrip('/')}/{database}")
        try:
            yield server
        finally:
            server.close()
    finally:
        admin.command(f"DROP DATABASE {database}")
        admin.close()
