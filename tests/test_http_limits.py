"""The HTTP limits of viewstats.http_limits, against a real uvicorn over raw loopback sockets.

Timeouts are short so that the tests are quick; nothing asserts how long anything took, only
what the server answered and that it closed the connection.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from viewstats.http_limits import HttpLimits, protocol_with

LIMITS = HttpLimits(head_timeout=1.0, body_timeout=1.0, linger=1.0, write_timeout=1.0)
Address = tuple[str, int]
DEADLINE = 20.0  # generous: only a server that never answers or never closes reaches it


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"path": request.url.path, "bytes": len(body)})


async def early(_: Request) -> Response:
    """Starts its answer before the body is read, so a body timeout finds it started."""
    async def chunks() -> AsyncIterator[bytes]:
        yield b"started"
        await asyncio.sleep(60)

    return StreamingResponse(chunks())


# Larger than what the kernel's socket buffers on both sides take, so that most of it waits in
# the server's transport until the client reads.
LARGE = b"x" * (16 << 20)


async def large(_: Request) -> Response:
    return Response(LARGE, media_type="application/octet-stream")


APP = Starlette(routes=[Route("/early", early, methods=["POST"]),
                        Route("/large", large, methods=["GET"]),
                        Route("/{path:path}", echo, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def server() -> Iterator[Address]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(APP, http=protocol_with(LIMITS), lifespan="off",
                            log_level="warning", timeout_keep_alive=5)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(1000):
        if uv.started:
            break
        time.sleep(0.01)
    assert uv.started, "uvicorn did not start"
    host, port = sock.getsockname()
    yield host, port
    uv.should_exit = True
    thread.join(timeout=15)


def connect(address: Address) -> socket.socket:
    conn = socket.create_connection(address, timeout=DEADLINE)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def read_to_eof(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes; a timeout means it never closed."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length, leaving the connection open and what follows
    unread (a pipelined answer may already be on its way)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = conn.recv(1)
        assert byte, f"closed before a complete head: {head!r}"
        head += byte
    status, headers = parse_head(head[:-4])
    body = b""
    while len(body) < int(headers["content-length"]):
        chunk = conn.recv(int(headers["content-length"]) - len(body))
        assert chunk, "closed in the middle of a body"
        body += chunk
    return status, headers, body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = (line.split(":", 1) for line in lines)
    return int(status_line.split()[1]), {k.strip().lower(): v.strip() for k, v in fields}


def refused(data: bytes) -> tuple[int, list[str]]:
    """The status and errors of a refusal, checking its shape on the way."""
    head, body = data.split(b"\r\n\r\n", 1)
    status, headers = parse_head(head)
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer["data"] == []
    assert len(answer["errors"]) == 1
    return status, answer["errors"]


def request(path: str = "/", headers: str = "", body: bytes = b"") -> bytes:
    method = "POST" if body else "GET"
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}{length}\r\n").encode() + body


def exchange(address: Address, data: bytes) -> bytes:
    with connect(address) as conn:
        conn.sendall(data)
        return read_to_eof(conn)


def drip(conn: socket.socket, data: bytes, interval: float = 0.1) -> bytes:
    """Send a byte at a time until the server answers; then read until it closes."""
    for byte in data:
        if readable(conn, interval):
            break
        conn.sendall(bytes([byte]))
    else:
        raise AssertionError("the server let the whole drip through")
    return read_to_eof(conn)


def readable(conn: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(conn, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def test_a_normal_request_is_answered(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(request("/hello"))
        status, _, body = read_response(conn)
    assert status == 200
    assert json.loads(body) == {"path": "/hello", "bytes": 0}


def test_keep_alive_serves_two_requests_on_one_connection(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(request("/one"))
        first = read_response(conn)
        conn.sendall(request("/two", body=b"x" * 1000))
        second = read_response(conn)
    assert (first[0], json.loads(first[2])) == (200, {"path": "/one", "bytes": 0})
    assert (second[0], json.loads(second[2])) == (200, {"path": "/two", "bytes": 1000})


def test_an_idle_keep_alive_connection_is_not_a_slow_head(server: Address) -> None:
    # The head deadline starts with the next request's first byte, not at the last response.
    with connect(server) as conn:
        conn.sendall(request("/one"))
        assert read_response(conn)[0] == 200
        time.sleep(LIMITS.head_timeout * 1.5)  # well inside the 5 s keep-alive
        conn.sendall(request("/two"))
        assert read_response(conn)[0] == 200


def test_pipelined_requests_are_both_answered(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(request("/one", body=b"abc") + request("/two"))
        first, second = read_response(conn), read_response(conn)
    assert json.loads(first[2]) == {"path": "/one", "bytes": 3}
    assert json.loads(second[2]) == {"path": "/two", "bytes": 0}


def test_a_64_kib_header_is_refused_with_431(server: Address) -> None:
    data = exchange(server, request(headers=f"X-Forwarded-For: {'1' * 65536}\r\n"))
    assert refused(data)[0] == 431


def test_a_header_is_refused_before_it_is_complete(server: Address) -> None:
    # Never finished, so only counting the buffered bytes (not a parsed header) can refuse it;
    # waiting for the head deadline would answer 408.
    with connect(server) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"1" * (LIMITS.max_head_bytes + 1))
        assert refused(read_to_eof(conn))[0] == 431


def test_101_headers_are_refused_with_431(server: Address) -> None:
    extra = "".join(f"X-H{i}: v\r\n" for i in range(LIMITS.max_headers))  # with Host: 101
    status, errors = refused(exchange(server, request(headers=extra)))
    assert status == 431
    assert "more than 100" in errors[0]


def test_100_headers_are_accepted(server: Address) -> None:
    extra = "".join(f"X-H{i}: v\r\n" for i in range(LIMITS.max_headers - 1))
    with connect(server) as conn:
        conn.sendall(request(headers=extra))
        assert read_response(conn)[0] == 200


def test_a_10_kib_url_is_refused_with_414(server: Address) -> None:
    assert refused(exchange(server, request("/" + "a" * 10 * 1024)))[0] == 414


def test_a_declared_10_mib_body_is_refused_with_413(server: Address) -> None:
    data = exchange(server, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n\r\n")
    assert refused(data)[0] == 413


def test_a_chunked_body_over_the_limit_is_refused_with_413(server: Address) -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    with connect(server) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(LIMITS.max_body_bytes // len(chunk) + 100):
            if readable(conn, 0):
                break
            conn.sendall(chunk)
        assert refused(read_to_eof(conn))[0] == 413


def test_a_dripped_head_times_out_with_408(server: Address) -> None:
    with connect(server) as conn:
        data = drip(conn, b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"z" * 1000)
    status, errors = refused(data)
    assert status == 408
    assert errors[0].startswith("headers:")


def test_a_silent_connection_times_out_with_408(server: Address) -> None:
    with connect(server) as conn:
        assert refused(read_to_eof(conn))[0] == 408


def test_a_dripped_body_times_out_with_408(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        status, errors = refused(drip(conn, b"b" * 1000))
    assert status == 408
    assert errors[0].startswith("body:")


def test_a_body_timeout_after_the_answer_started_only_closes(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        data = drip(conn, b"b" * 1000)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"408" not in data


def test_many_dripping_connections_are_closed_while_others_are_served(server: Address) -> None:
    slow = {connect(server) for _ in range(300)}
    for conn in slow:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    closed: set[socket.socket] = set()
    answers: list[bytes] = []
    served = 0
    selector = selectors.DefaultSelector()
    for conn in slow:
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ, bytearray())
    try:
        end = time.monotonic() + DEADLINE * 2
        while len(closed) < len(slow) and time.monotonic() < end:
            for key, _ in selector.select(0.1):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    chunk = ready.recv(65536)
                except ConnectionResetError:  # closed too, if without its answer
                    chunk = b""
                key.data.extend(chunk)
                if not chunk:
                    selector.unregister(ready)
                    closed.add(ready)
                    answers.append(bytes(key.data))
            for conn in slow - closed:
                try:
                    conn.send(b"z")  # one more byte of a header that never ends
                except BlockingIOError:
                    pass
                except OSError:  # the server aborted it after its linger; recv will see it
                    pass
            with connect(server) as normal:
                normal.sendall(request("/normal"))
                assert read_response(normal)[0] == 200
            served += 1
    finally:
        selector.close()
        for conn in slow:
            conn.close()
    assert len(closed) == len(slow), f"{len(slow) - len(closed)} drip connections still open"
    assert served > 0
    assert all(refused(answer)[0] == 408 for answer in answers if answer)


def test_a_malformed_request_gets_the_json_error_shape(server: Address) -> None:
    # uvicorn's own answer is plain text ("Invalid HTTP request received.").
    status, errors = refused(exchange(server, b"GET / HTTP/1.1\r\nHost t\r\n\r\n"))
    assert status == 400
    assert errors == ["request: not a valid HTTP/1.1 request"]


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate,chunked", "identity, chunked"])
def test_a_transfer_coding_other_than_chunked_is_refused_with_501(server: Address,
                                                                  coding: str) -> None:
    # llhttp reads `gzip, chunked` as plain chunked: the app would get the compressed bytes.
    body = b"5\r\nhello\r\n0\r\n\r\n"
    data = exchange(server, f"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n"
                            "\r\n".encode() + body)
    status, errors = refused(data)
    assert status == 501
    assert errors == ["transfer-encoding: only chunked is supported"]


def test_a_chunked_body_is_still_read(server: Address) -> None:
    with connect(server) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n\r\n")
        status, _, body = read_response(conn)
    assert (status, json.loads(body)) == (200, {"path": "/", "bytes": 5})


def write_timeouts() -> float:
    return REGISTRY.get_sample_value("viewstats_http_refused_total",
                                     {"reason": "write_timeout"}) or 0.0


def asking_large(address: Address, window: int | None = 4096) -> socket.socket:
    """A connection that asked for LARGE, with a small receive window unless None."""
    conn = socket.socket()
    if window is not None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)  # before connect
    conn.settimeout(DEADLINE)
    conn.connect(address)
    conn.sendall(request("/large"))
    return conn


def received_until_closed(conn: socket.socket) -> int:
    size = 0
    try:
        while chunk := conn.recv(1 << 20):
            size += len(chunk)
    except ConnectionResetError:  # aborted: what was still buffered is gone
        pass
    return size


def test_connections_that_do_not_read_their_answer_are_closed(server: Address) -> None:
    # Finding 2 of issue 19: ten sockets that ask a large answer and never read it held it in
    # memory for as long as they stayed open.
    before = write_timeouts()
    conns = [asking_large(server) for _ in range(10)]
    try:
        end = time.monotonic() + DEADLINE
        while write_timeouts() < before + len(conns) and time.monotonic() < end:
            time.sleep(0.1)
        assert write_timeouts() == before + len(conns), "not every non-reader was closed"
        for conn in conns:
            assert received_until_closed(conn) < len(LARGE)
    finally:
        for conn in conns:
            conn.close()


def test_a_slow_reader_that_keeps_reading_gets_the_whole_answer(server: Address) -> None:
    # Each write_timeout only needs some progress: a slow link is not a stalled one.
    before = write_timeouts()
    with asking_large(server, window=None) as conn:
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(1)
        size = 0
        while size < len(LARGE):
            chunk = conn.recv(min(1 << 20, len(LARGE) - size))
            assert chunk, "closed before the whole answer"
            size += len(chunk)
            time.sleep(LIMITS.write_timeout / 5)
    assert write_timeouts() == before
