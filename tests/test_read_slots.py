"""Reads never hold up writes on the embedded engine (viewstats/core/storage/embedded.py): while
reads the engine cannot finish hold every read slot, and more wait behind them, an insert still
completes; the reads complete once let go. The reads are real engine queries of an HTTP source
(the `url` table function) that this test answers only when it chooses, so the slots stay
taken for as long as the test needs, whatever the machine's speed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from tests.test_storage import rows_of
from viewstats.core.events import insert_events
from viewstats.core.storage import Row, Storage

pytestmark = pytest.mark.chdb
POOL_SIZE = 4  # the session database's connections (tests/support/database.py)
READS = 2 * POOL_SIZE
NOON = 1_714_564_800_000
GUARD_S = 120  # only ends a test that would otherwise hang; nothing is timed


class _HeldSource(http.server.ThreadingHTTPServer):
    """Answers each GET with one CSV row once `release` is set; counts the GETs received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = threading.Event()
        self.gets = 0
        self.arrived = threading.Condition()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"

    def wait_for_gets(self, count: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.gets >= count, GUARD_S), self.gets


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HeldSource

    def do_HEAD(self) -> None:  # the engine asks for the size first
        self._head()

    def do_GET(self) -> None:
        with self.server.arrived:
            self.server.gets += 1
            self.server.arrived.notify_all()
        self.server.release.wait()
        self._head()
        self.wfile.write(b"1\n")

    def _head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        del args


@contextmanager
def _held_source() -> Iterator[_HeldSource]:
    source = _HeldSource()
    threading.Thread(target=source.serve_forever, daemon=True).start()
    try:
        yield source
    finally:
        source.release.set()  # also when the test failed: no engine query is left hanging
        source.shutdown()
        source.server_close()


@pytest.mark.parametrize("columns", [False, True], ids=["query", "query_columns"])
def test_an_insert_completes_while_reads_hold_every_read_slot(storage: Storage,
                                                              columns: bool) -> None:
    client_id = fresh_client_id()

    def read(url: str) -> list[Row]:
        sql, params = "SELECT a FROM url({u:String}, 'CSV', 'a UInt8')", {"u": url}
        if columns:  # numpy columns hold their read slot as rows do
            return rows_of(storage.query_columns(sql, params))
        return storage.query(sql, params)

    # The source lets go before the threads are joined, also when the test fails.
    with ThreadPoolExecutor(READS + 1) as threads, _held_source() as source:
        reads = [threads.submit(read, source.url(f"read-{i}")) for i in range(READS)]
        source.wait_for_gets(POOL_SIZE - 1)  # every read slot is taken, in the engine
        insert = threads.submit(insert_events, storage, [watch(client_id, NOON, "AU", 1)])
        # Before the change, the reads took all four connections and this waited for one.
        assert insert.result(timeout=GUARD_S) == 1
        assert not any(read.done() for read in reads)
        assert source.gets == POOL_SIZE - 1  # the other reads wait outside the engine
        source.release.set()
        assert [read.result(timeout=GUARD_S) for read in reads] == [[(1,)]] * READS
    assert storage.query("SELECT count() FROM player_events WHERE client_id = {c:UInt32}",
                         {"c": client_id}) == [(1,)]
