"""A test-only ClickHouse HTTP endpoint: clickhouse-connect asks, chDB answers (architecture §9).

    python -m tests.support.clickhouse_http --path DIR --port P     (or `endpoint()` below)

A process of its own, since a process holds one chDB path. It answers what clickhouse-connect
1.12 sends as a server would: the statement in the body or the `query` parameter (then the body
is an INSERT's data, run with the statement, rows written reported in
X-ClickHouse-Summary); `param_<name>` bound parameters; every other parameter a setting, SET on a
chDB connection of the request's own (settings belong to the query context, not its text:
SETTINGS appended to a CREATE TABLE would be table settings); `Content-Encoding: lz4` bodies (an
LZ4 frame per block) and lz4 answers; errors as HTTP 500 with X-ClickHouse-Exception-Code and
`Code: N. DB::Exception: ...`. Refused as NOT_IMPLEMENTED: sessions, ClickHouse's compressed
framing (compress/decompress=1), client_protocol_version (answers are protocol-0 Native, which
the driver's probe then settles on), form-encoded queries, other encodings. No auth: loopback.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chdb
import lz4.frame  # type: ignore[import-untyped]
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from viewstats.devtools.processes import free_port, stop, wait_for_http

REPO = Path(__file__).resolve().parents[2]
SLOTS = 4  # statements run at once: a small pool, as architecture §9 asks
# Parameters the HTTP layer consumes. The progress and client-close settings do not apply:
# every answer is computed whole before it is sent.
_TRANSPORT = frozenset({"query", "database", "default_format", "query_id", "wait_end_of_query",
                        "enable_http_compression", "send_progress_in_http_headers",
                        "http_headers_progress_interval_ms",
                        "cancel_http_readonly_queries_on_client_close"})
# A ClickHouse server's default; chDB's is 1, which would acknowledge inserts before writing.
_SERVER_DEFAULTS = {"async_insert": "0"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"^Code: (\d+)\.")
_INSERT_DATA = re.compile(rb"\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n)?",
                          re.DOTALL | re.IGNORECASE)


class ClickHouseError(Exception):
    def __init__(self, code: int, text: str, status: int = 500) -> None:
        super().__init__(text)
        self.code, self.text, self.status = code, text, status


def _not_implemented(what: str) -> ClickHouseError:
    return ClickHouseError(48, f"Code: 48. DB::Exception: {what} is not supported by the test "
                               "endpoint. (NOT_IMPLEMENTED)", status=501)


def _refuse_unsupported(params: Mapping[str, str], content_type: str,
                        content_encoding: str) -> None:
    if "session_id" in params:
        raise _not_implemented("session_id (each request runs on a connection of its own)")
    for name in ("compress", "decompress"):
        if params.get(name, "0") != "0":
            raise _not_implemented(f"{name}=1 (ClickHouse's compressed block framing)")
    if params.get("client_protocol_version", "0") != "0":
        raise _not_implemented("client_protocol_version")
    if content_type.startswith("multipart/form-data"):
        raise _not_implemented("a form-encoded query (the driver's form for long parameters)")
    if content_encoding not in ("", "identity", "lz4"):
        raise _not_implemented(f"Content-Encoding {content_encoding}")


def _lz4_frames(data: bytes) -> bytes:
    """The driver compresses each block as its own frame: decode them all, one after another."""
    out = bytearray()
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out += decompressor.decompress(data)
        if not decompressor.eof:
            raise ClickHouseError(432, "Code: 432. DB::Exception: truncated lz4 frame. "
                                       "(UNKNOWN_CODEC)")
        data = decompressor.unused_data
    return bytes(out)


def _set_statement(settings: Mapping[str, str]) -> str:
    parts = []
    for name, value in settings.items():
        if not _NAME.match(name):
            raise ClickHouseError(115, f"Code: 115. DB::Exception: Unknown setting '{name}'. "
                                       "(UNKNOWN_SETTING)")
        parts.append(f"{name} = '" + value.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return "SET " + ", ".join(parts)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Engine:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = str(path)
        self._anchor: Any = chdb.connect(self._path)  # type: ignore[no-untyped-call]
        self.version, self.timezone, self._compression = self._anchor.query(
            "SELECT version(), timezone(), getSetting('enable_http_compression')",
            "TabSeparated").bytes().decode().split()
        self._slots = threading.BoundedSemaphore(SLOTS)

    def close(self) -> None:
        self._anchor.close()

    def execute(self, params: Mapping[str, str], headers: Mapping[str, str],
                body: bytes) -> Reply:
        reply = Reply(headers={"X-ClickHouse-Query-Id": params.get("query_id") or
                               str(uuid.uuid4()), "X-ClickHouse-Timezone": self.timezone})
        try:
            content_encoding = headers.get("content-encoding", "")
            _refuse_unsupported(params, headers.get("content-type", ""), content_encoding)
            data = _lz4_frames(body) if content_encoding == "lz4" else body
            if query := params.get("query"):
                data = query.encode() + (b"\n" + data if data else b"")
            settings = {**_SERVER_DEFAULTS, **{k: v for k, v in params.items()
                                               if k not in _TRANSPORT and not
                                               k.startswith("param_")}}
            bound = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
            with self._slots:
                conn: Any = chdb.connect(self._path)  # type: ignore[no-untyped-call]
                try:
                    conn.query(_set_statement(settings))
                    if database := params.get("database"):
                        conn.query("USE `" + database.replace("`", "\\`") + "`")
                    reply.body, summary = _run(conn, data, bound,
                                               params.get("default_format", "TabSeparated"))
                finally:
                    conn.close()
        except ClickHouseError as exc:
            return self._error(reply, exc.status, exc.code, exc.text)
        except Exception as exc:  # chDB's errors carry ClickHouse's own code and text
            text = str(exc)
            code = int(match[1]) if (match := _CODE.match(text)) else 1001
            return self._error(reply, 500, code, text)
        reply.headers["X-ClickHouse-Summary"] = orjson.dumps(summary).decode()
        accepted = {e.strip() for e in headers.get("accept-encoding", "").split(",")}
        if params.get("enable_http_compression", self._compression) in ("1", "true") \
                and "lz4" in accepted:
            reply.body = lz4.frame.compress(reply.body)
            reply.headers["Content-Encoding"] = "lz4"
        return reply

    def _error(self, reply: Reply, status: int, code: int, text: str) -> Reply:
        reply.status, reply.body = status, f"{text} (version {self.version})\n".encode()
        reply.headers["X-ClickHouse-Exception-Code"] = str(code)
        return reply


def _run(conn: Any, data: bytes, bound: dict[str, str],
         default_format: str) -> tuple[bytes, dict[str, str]]:
    """Run one statement; return its output and a summary in the server's shape (strings)."""
    if _INSERT_DATA.match(data):
        # The data rides in the statement, as a server parses it: chDB's streaming inserter
        # (send_insert) reports success when the write itself failed.
        result = conn.query(data)
        return b"", {"written_rows": str(result.rows_written()),
                     "written_bytes": str(result.bytes_written())}
    result = conn.query(data.decode(), default_format, params=bound)
    return result.bytes() or b"", {
        "read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
        "written_rows": "0", "elapsed_ns": str(int(result.elapsed() * 1e9))}


def build_app(engine: Engine) -> Starlette:
    async def statement(request: Request) -> Response:
        reply = await run_in_threadpool(engine.execute, dict(request.query_params),
                                        request.headers, await request.body())
        return Response(reply.body, reply.status, reply.headers,
                        media_type="application/octet-stream")

    async def ping(_: Request) -> Response:
        return PlainTextResponse("Ok.\n")

    return Starlette(routes=[Route("/", statement, methods=["GET", "POST"]),
                             Route("/ping", ping)])


@contextmanager
def endpoint(path: Path, log: Path) -> Iterator[str]:
    """Run the endpoint on `path` in its own process; yield its URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.clickhouse_http",
                                 "--path", str(path), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/ping", proc.poll)
        yield url
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True, help="the chDB data directory")
    parser.add_argument("--port", type=int, required=True, help="the port on 127.0.0.1")
    args = parser.parse_args()
    engine = Engine(args.path)
    try:
        uvicorn.run(build_app(engine), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
