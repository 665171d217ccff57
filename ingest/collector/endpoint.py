"""`POST /events`: take player beacons, stamp them, and hand them to the sink (architecture §3).

Answers:

* 202 ``{"accepted": N}``: every event was valid and is durable.
* 400 ``{"accepted": N, "errors": [...]}``: some events were bad; the N good ones are durable.
* 400 / 413 / 415 ``{"data": [], "errors": [...]}``: the request as a whole was refused (not
  JSON or not a batch of events, larger than `max_body`, wrong Content-Type); nothing is stored.
* 503 ``{"data": [], "errors": [...]}`` with ``Retry-After``: the sink could not make the
  events durable (a read-only or full disk; a broker away, or not acknowledging within
  KAFKA_PRODUCE_TIMEOUT_S). Embedded, nothing of the request is stored. Through Kafka its events
  may still arrive later, so the player resends the same body and the consumer counts a view once.

Every answer allows any origin, because the player page is usually on a customer's site. Beacons
(`navigator.sendBeacon` with a string, sent as text/plain) need no preflight; `fetch` with
application/json does, so OPTIONS is answered too. Credentialed CORS is not offered: a player
should send strings, not an application/json Blob, through sendBeacon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from viewstats.core.events import UNKNOWN_COUNTRY, PlayerEvent
from viewstats.core.hosts import page_url, url_host
from viewstats.core.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from viewstats.core.responses import capped_errors, error_response, json_response
from viewstats.core.settings import IPNetwork
from viewstats.core.storage import StorageError
from viewstats.core.storage.write_health import RETRY_AFTER_S
from viewstats.ingest.collector.client_ip import viewer_ip
from viewstats.ingest.collector.geoip import CountryResolver, Place
from viewstats.ingest.collector.sink import EventSink, SinkUnavailable
from viewstats.ingest.collector.user_agent import device
from viewstats.ingest.collector.validation import BodyError, Stamp, parse_body, validate
from viewstats.ingest.collector.viewer_key import ViewerKeys

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

_MEDIA_TYPES = frozenset({"text/plain", "application/json"})
_CORS = {"Access-Control-Allow-Origin": "*"}
# A client still sending a body we refused would otherwise be read to its end by the server.
_CORS_CLOSE = {**_CORS, "Connection": "close"}
_RETRY = {**_CORS, "Retry-After": str(RETRY_AFTER_S)}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


# The port a URL means when it names none, as Origin and the Host header both leave it out.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def request_page(origin: str | None, referer: str | None) -> tuple[str, str]:
    """The page's host name from Origin, else Referer ("null" and junk fall through), and its
    URL (`page_url`) from Referer when that names the same host, as it does with a path when
    the browser's referrer policy lets it, else from Origin; ("", "") when neither names one."""
    host = next((found for url in (origin, referer) if url and (found := url_host(url))), None)
    if host is None:
        return "", ""
    page = referer if referer and url_host(referer) == host else origin
    assert page is not None  # the host came from one of them
    return host, page_url(page)


def from_own_page(origin: str | None, referer: str | None, authority: str | None) -> bool:
    """Whether the page that sent the request (Origin, else Referer, as `request_page` picks
    it) has the host and port the request was sent to (`authority`, its Host header).

    That page is the built-in player's, served beside `/events` by the same process, so its
    `embed_url` names the site that frames it. A browser sets Origin and Referer, so another
    site's page cannot pass for it; a client outside a browser can, as it can send any Origin.
    """
    for url in (origin, referer):
        if url and url_host(url):
            page = _address(url)
            return page is not None and authority is not None \
                and page == _address(f"{urlsplit(url).scheme}://{authority}")
    return False


def _address(url: str) -> tuple[str, int | None] | None:
    """The host of `url` and its port, the scheme's default when it names none; None without a
    valid host or port."""
    if (host := url_host(url)) is None:
        return None
    try:
        parts = urlsplit(url)
        return host, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is no number, or out of range
        return None


class Collector:
    """The `POST /events` endpoint over a sink, a GeoIP resolver and the trusted proxies."""

    def __init__(self, sink: EventSink, resolver: CountryResolver,
                 trusted_proxies: Sequence[IPNetwork], *, viewer_keys: ViewerKeys | None = None,
                 max_body: int = MAX_BODY, clock: Callable[[], int] = epoch_ms) -> None:
        self._sink = sink
        self._resolver = resolver
        self._viewer_keys = viewer_keys  # None: no viewer key (0), for tests of other fields
        self._trusted = tuple(trusted_proxies)
        self._max_body = max_body
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/events", self.post_events, methods=["POST"]),
            Route("/events", self.preflight, methods=["OPTIONS"]),
        ]

    async def preflight(self, _: Request) -> Response:
        return Response(status_code=204, headers=_PREFLIGHT)

    async def post_events(self, request: Request) -> Response:
        ts_ms = self._clock()
        headers = request.headers
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in _MEDIA_TYPES:
            EVENTS_REJECTED.labels("content_type").inc()
            return error_response(
                415, ["Content-Type must be text/plain or application/json"], _CORS_CLOSE)
        try:
            body = await self._read_body(request)
        except ClientDisconnect:
            # Nobody is left to read the answer; returning one keeps this out of the error log.
            return error_response(400, ["body: incomplete"], _CORS)
        if body is None:
            EVENTS_REJECTED.labels("too_large").inc()
            return error_response(413, [f"body: larger than {self._max_body} bytes"],
                                  _CORS_CLOSE)
        try:
            items = parse_body(body)
        except BodyError as exc:
            EVENTS_REJECTED.labels("body").inc()
            return error_response(400, [str(exc)], _CORS)

        stamp = self._stamp(request, ts_ms)
        player_page = from_own_page(headers.get("origin"), headers.get("referer"),
                                    headers.get("host"))
        events: list[PlayerEvent] = []
        errors: list[str] = []
        for index, raw in enumerate(items):
            checked = validate(raw, index, stamp, from_player_page=player_page)
            if isinstance(checked, PlayerEvent):
                events.append(checked)
            else:
                errors.extend(checked)
        if len(events) < len(items):
            EVENTS_REJECTED.labels("invalid").inc(len(items) - len(events))
        if events:
            try:
                await self._sink.submit(events)
            except Exception as exc:
                EVENTS_REJECTED.labels("unavailable").inc(len(events))
                if not isinstance(exc, StorageError | SinkUnavailable):  # logged once a burst
                    log.exception("could not store %d events; answered 503", len(events))
                return error_response(503, ["events could not be stored, retry"], _RETRY)
            EVENTS_ACCEPTED.inc(len(events))
        if errors:
            return json_response({"accepted": len(events), "errors": capped_errors(errors)},
                                 400, _CORS)
        return json_response({"accepted": len(events)}, 202, _CORS)

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None as soon as it is known to exceed `max_body` (the rest is unread)."""
        length = request.headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() \
                and int(length) > self._max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        # Content-Length can be absent (chunked) or lie, so the bytes themselves are counted.
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _stamp(self, request: Request, ts_ms: int) -> Stamp:
        """What the request says of its events. The viewer's address is used here and
        forgotten: only its country, region and keyed hash go on (architecture §3)."""
        headers, client = request.headers, request.client
        address = viewer_ip(client.host if client else None, headers.getlist("x-forwarded-for"),
                            self._trusted)
        place = Place(UNKNOWN_COUNTRY, "") if address is None else self._resolver.place(address)
        host, page = request_page(headers.get("origin"), headers.get("referer"))
        browser, os, platform = device(headers.get("user-agent"))
        viewer = 0 if self._viewer_keys is None else self._viewer_keys.key(address)
        return Stamp(ts_ms, place.country, host, page, place.region, browser, os, platform,
                     viewer)
