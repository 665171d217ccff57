"""Bounds on what one HTTP/1.1 connection can make a server process hold, and for how long.

uvicorn's httptools protocol has no read deadlines, and httptools keeps an unfinished header
line whole in a Python bytes object, so a 64 MiB header or a connection dripping a byte at a
time costs the process as much memory and time as the client likes. `LimitedHttpToolsProtocol`
refuses such requests early with the project's error JSON, then closes the connection:
431 (head too large, too many headers), 414 (URL), 413 (declared or counted body), 408 (head or
body not received in time), 400 (not HTTP/1.1 the parser can read; uvicorn's own answer is plain
text) and 501 (a transfer coding other than chunked, which would otherwise be read as if the
body were not encoded).

Answers are bounded in time too: a client that stops reading leaves its answer in the
transport's buffer, as large as the answer, for as long as the connection stays open. Once the
buffer passes its high-water mark, it must shrink within `write_timeout` (and again within each
further `write_timeout`), or the connection is aborted and the buffer freed.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import struct
import termios
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from viewstats.core.metrics import HTTP_REFUSED


@dataclass(frozen=True)
class HttpLimits:
    max_head_bytes: int = 16 * 1024  # request line and headers, as sent
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    # The collector refuses more than 64 KiB itself; this bounds every other route.
    max_body_bytes: int = 1024 * 1024
    head_timeout: float = 10.0  # from connection open, or from the next request's first byte
    body_timeout: float = 10.0  # from the end of the head to the end of the body
    # How long a paused answer may make no progress (HTTP_WRITE_TIMEOUT_S).
    write_timeout: float = 15.0
    # How long a refused connection is still read (and the bytes dropped) after the answer:
    # closing with unread bytes sends a reset, which can destroy the answer before it is read.
    linger: float = 2.0


def protocol_with(chosen: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """uvicorn builds protocols itself (`Config(http=...)` takes a class), so the limits
    travel as a class attribute."""

    class Limited(LimitedHttpToolsProtocol):
        limits = chosen

    return Limited


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    # Per-connection state, set in connection_made (uvicorn's __init__ signature stays as is).
    _in_head: bool
    _head_bytes: int
    _url_bytes: int
    _header_count: int
    _body_bytes: int
    _refused: bool
    _head_timer: TimerHandle | None
    _body_timer: TimerHandle | None
    _linger_timer: TimerHandle | None
    _write_timer: TimerHandle | None
    _unsent_bytes: int  # in the write buffer when the write timer was last armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head, self._refused = True, False
        self._head_bytes = self._url_bytes = self._header_count = self._body_bytes = 0
        self._head_timer = self._body_timer = self._linger_timer = self._write_timer = None
        self._unsent_bytes = 0
        super().connection_made(transport)
        self._head_timer = self._arm(self.limits.head_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._cancel_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._unsent_bytes = self._unsent()
            self._write_timer = self._arm(self.limits.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        self._cancel_write_timer()
        super().resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head and self._head_timer is None:
            self._head_timer = self._arm(self.limits.head_timeout, self._head_timed_out)
        while data and not self._refused and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            # Feed the parser no more than the head may still take: it is the bytes buffered
            # before headers-complete that have to be bounded, not the parsed headers.
            room = self.limits.max_head_bytes - self._head_bytes
            if room <= 0:
                self._refuse(431, f"headers: larger than {self.limits.max_head_bytes} bytes",
                             "head_bytes")
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._url_bytes = self._header_count = self._body_bytes = 0
        if self._head_timer is None:  # a pipelined request begins inside an earlier chunk
            self._head_timer = self._arm(self.limits.head_timeout, self._head_timed_out)
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refuse(414, f"url: longer than {self.limits.max_url_bytes} bytes", "url")
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"headers: more than {self.limits.max_headers}", "header_count")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._cancel_timers()
        codings = {coding.strip().lower() for name, value in self.headers
                   if name == b"transfer-encoding" for coding in value.split(b",")}
        if codings - {b"chunked"}:
            # llhttp reads `gzip, chunked` as chunked and hands the app the still-compressed
            # bytes; RFC 9112 §6.1 answers a coding the server does not know with 501.
            self._refuse(501, "transfer-encoding: only chunked is supported", "transfer_coding")
            return
        length = next((v.strip() for n, v in self.headers if n == b"content-length"), b"")
        # llhttp has already refused a length that is not digits or overflows 64 bits.
        if length.isdigit() and int(length) > self.limits.max_body_bytes:
            self._refuse(413, f"body: larger than {self.limits.max_body_bytes} bytes", "body")
            return
        self._in_head = False
        super().on_headers_complete()
        self._body_timer = self._arm(self.limits.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)  # a chunked body declares no length
        if self._body_bytes > self.limits.max_body_bytes:
            self._refuse(413, f"body: larger than {self.limits.max_body_bytes} bytes", "body")
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._cancel_timers()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The connection now belongs to another protocol; our deadlines must not close it.
        self._cancel_timers()
        self._refused = True
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        # The parser failed (uvicorn logged it). The parser may also fail on what follows a
        # request we refused, which _refuse then ignores.
        del msg  # uvicorn's plain-text message; the answer names the request instead
        self._refuse(400, "request: not a valid HTTP/1.1 request", "malformed")

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._refuse(408, f"headers: not received within {self.limits.head_timeout:g} s",
                     "head_timeout")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        # Not the client's fault while we do not read (the app has not taken the buffered
        # body yet, or the request waits behind a pipelined one) or owe it a 100 Continue.
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            self._body_timer = self._arm(self.limits.body_timeout, self._body_timed_out)
            return
        self._refuse(408, f"body: not received within {self.limits.body_timeout:g} s",
                     "body_timeout")

    def _write_timed_out(self) -> None:
        self._write_timer = None
        unsent = self._unsent()
        if unsent < self._unsent_bytes:  # the client reads, if slowly: give it another period
            self._unsent_bytes = unsent
            self._write_timer = self._arm(self.limits.write_timeout, self._write_timed_out)
            return
        HTTP_REFUSED.labels("write_timeout").inc()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's next send returns without writing
        self.transport.abort()  # close() would wait for the buffer the client never reads

    def _unsent(self) -> int:
        """Bytes of answers not yet taken by the client: the transport's buffer and the
        kernel's send queue. The transport's alone moves only when the kernel's, megabytes on
        a fast link, has room again, so a client that reads slowly would look stalled."""
        queued = 0
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                queued = struct.unpack("i", answer)[0]
            except OSError:  # not a socket that reports its queue (Linux's TCP does)
                pass
        return self.transport.get_write_buffer_size() + queued

    def _refuse(self, status: int, error: str, reason: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._cancel_timers()
        HTTP_REFUSED.labels(reason).inc()
        cycle = self.cycle  # None until the first request's headers are complete
        if self._in_head:
            # The cycle is the previous request's: an answer in the middle of its response
            # would corrupt it.
            may_answer = cycle is None or cycle.response_complete
        else:
            may_answer = not cycle.response_started and not self.pipeline
        if cycle is not None and not cycle.response_complete:
            # The app must neither write after the connection is given up nor wait for body.
            cycle.disconnected = True
            cycle.message_event.set()
        if may_answer:
            self.transport.write(self._answer(status, error))
        if may_answer and self.transport.can_write_eof():
            self.transport.write_eof()  # data_received now drops what still comes
            self._linger_timer = self._arm(self.limits.linger, self.transport.abort)
        else:
            self.transport.close()

    def _answer(self, status: int, error: str) -> bytes:
        body = json.dumps({"data": [], "errors": [error]}).encode()
        lines = [STATUS_LINE[status]]
        lines += [name + b": " + value + b"\r\n"
                  for name, value in self.server_state.default_headers]
        lines += [b"content-type: application/json\r\n",
                  b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]
        return b"".join(lines)

    def _arm(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.loop.call_later(delay, callback)

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._linger_timer = None
