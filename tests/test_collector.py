"""POST /events through the ASGI app, with a recording sink in place of the batcher or Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from ipaddress import ip_address, ip_network
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Scope

from tests.support.geoip_fixture import dbip_city_record, write_raw_mmdb, write_test_mmdb
from viewstats.core.events import PlayerEvent
from viewstats.ingest.collector.endpoint import MAX_BODY, Collector, request_page
from viewstats.ingest.collector.geoip import CountryResolver
from viewstats.ingest.collector.viewer_key import ViewerKeys
from viewstats.server import build_app

NOW_MS = 1_717_000_000_123
VIEW_ID = "3f2b8c1e-9d4a-4f6b-8a2c-1e5d7b9f0a3c"
GOOD = {"event": "watch", "client_id": 17, "video_id": "v-8812", "type": "vod",
        "view_id": VIEW_ID}
BEACON = {"Content-Type": "text/plain;charset=UTF-8"}
LOCAL = ("127.0.0.1", 123)
GEO = {"127.0.0.1/32": "NZ", "1.1.1.0/24": "AU", "8.8.8.0/24": "US", "2001:db8::/32": "DE"}
TRUSTED = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
SECRET = "password=hunter2 at /var/lib/secret"


class RecordingSink:
    """Stands in for the durable sink: what it records counts as stored."""

    def __init__(self) -> None:
        self.batches: list[list[PlayerEvent]] = []
        self.failure: Exception | None = None

    async def start(self) -> None:
        pass

    async def submit(self, events: Sequence[PlayerEvent]) -> None:
        if self.failure is not None:
            raise self.failure
        self.batches.append(list(events))

    async def stop(self) -> None:
        pass

    @property
    def events(self) -> list[PlayerEvent]:
        return [event for batch in self.batches for event in batch]


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountryResolver]:
    path = write_test_mmdb(tmp_path_factory.mktemp("geo") / "geo.mmdb", GEO, "dbip")
    with CountryResolver(path) as opened:
        yield opened


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def app(sink: RecordingSink, resolver: CountryResolver) -> Starlette:
    return build_app(Collector(sink, resolver, TRUSTED, clock=lambda: NOW_MS).routes())


Body = bytes | AsyncIterator[bytes]


def request(app: Starlette, body: Body = b"", *, headers: Mapping[str, str] = BEACON,
            client: tuple[str, int] = LOCAL, method: str = "POST") -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
            return await http.request(method, "/events", content=body, headers=headers)

    return asyncio.run(send())


def post(app: Starlette, doc: object, *, headers: Mapping[str, str] = BEACON,
         client: tuple[str, int] = LOCAL) -> httpx.Response:
    return request(app, orjson.dumps(doc), headers=headers, client=client)


def event(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


def test_one_beacon_is_accepted_and_stamped(app: Starlette, sink: RecordingSink) -> None:
    response = post(app, GOOD)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    assert response.headers["access-control-allow-origin"] == "*"
    assert sink.batches == [[PlayerEvent(17, NOW_MS, "watch", "vod", "v-8812", VIEW_ID,
                                         "NZ", "")]]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/json",
     "application/json; charset=utf-8", "Application/JSON"],
)
def test_an_array_is_one_submission(app: Starlette, sink: RecordingSink,
                                    content_type: str) -> None:
    docs = [event(event=name) for name in ("init", "start", "watch")]
    response = post(app, docs, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()) == (202, {"accepted": 3})
    assert [[e.event for e in batch] for batch in sink.batches] == [["init", "start", "watch"]]


def test_the_client_clock_is_never_used(app: Starlette, sink: RecordingSink) -> None:
    assert post(app, event(ts=1, country="US", host="evil.example")).status_code == 202
    assert (sink.events[0].ts_ms, sink.events[0].country) == (NOW_MS, "NZ")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "application/x-www-form-urlencoded"},
     {"Content-Type": "multipart/form-data; boundary=x"}, {"Content-Type": "text/html"}],
)
def test_other_content_types_are_refused(app: Starlette, sink: RecordingSink,
                                         headers: dict[str, str]) -> None:
    response = post(app, GOOD, headers=headers)
    assert response.status_code == 415
    assert response.json() == {
        "data": [], "errors": ["Content-Type must be text/plain or application/json"]}
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["connection"] == "close"  # so the server does not read the body
    assert sink.batches == []


def padded(size: int) -> bytes:
    """A valid one-event body of exactly `size` bytes (JSON allows trailing white space)."""
    body = orjson.dumps(GOOD)
    return body + b" " * (size - len(body))


def test_a_body_of_exactly_64_kib_is_accepted(app: Starlette, sink: RecordingSink) -> None:
    assert post_raw(app, padded(64 * 1024)).status_code == 202
    assert len(sink.events) == 1


def post_raw(app: Starlette, body: Body, headers: Mapping[str, str] = BEACON) -> httpx.Response:
    return request(app, body, headers=headers)


def test_a_larger_body_is_refused_by_its_length(app: Starlette, sink: RecordingSink) -> None:
    response = post_raw(app, padded(64 * 1024 + 1))
    assert response.status_code == 413
    assert response.json() == {"data": [], "errors": ["body: larger than 65536 bytes"]}
    assert response.headers["connection"] == "close"
    assert sink.batches == []


class Chunks:
    """A streamed body that records how much of it the server pulled."""

    def __init__(self, count: int, size: int = 1024) -> None:
        self.count, self.size, self.pulled = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b" " * self.size


def test_a_declared_length_over_the_limit_is_refused_unread(app: Starlette) -> None:
    body = Chunks(100)
    headers = {**BEACON, "Content-Length": str(100 * 1024)}
    assert post_raw(app, body.__aiter__(), headers).status_code == 413
    assert body.pulled == 0


def test_a_chunked_body_is_cut_off_at_the_limit(app: Starlette, sink: RecordingSink) -> None:
    body = Chunks(1000)
    response = post_raw(app, body.__aiter__())
    assert response.status_code == 413
    assert body.pulled == 65  # 64 KiB fit; the 65th chunk crosses the line and stops the read
    assert sink.batches == []


def test_a_chunked_body_within_the_limit_is_read(app: Starlette, sink: RecordingSink) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"[", orjson.dumps(GOOD), b",", orjson.dumps(GOOD), b"]"):
            yield part

    assert post_raw(app, chunks()).json() == {"accepted": 2}


def test_a_client_gone_mid_body_is_no_error(app: Starlette, sink: RecordingSink,
                                           caplog: pytest.LogCaptureFixture) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/events", "root_path": "",
                    "query_string": b"", "headers": [(b"content-type", b"text/plain")],
                    "client": LOCAL}
    with caplog.at_level(logging.WARNING):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert sink.batches == []
    assert caplog.records == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "body: not valid JSON"),
        (b'{"event": "watch",', "body: not valid JSON"),
        (b'"watch"', "body: must be a JSON object or an array of objects"),
        (b"[]", "body: an array must hold 1 to 500 events, got 0"),
        (orjson.dumps([{}] * 501), "body: an array must hold 1 to 500 events, got 501"),
    ],
)
def test_a_body_that_is_not_a_batch_is_refused(app: Starlette, sink: RecordingSink,
                                               body: bytes, error: str) -> None:
    response = post_raw(app, body)
    assert (response.status_code, response.json()) == (400, {"data": [], "errors": [error]})
    assert sink.batches == []


def realistic(count: int) -> list[dict[str, object]]:
    """Events as players send them: 20-character video ids, each view a fresh random UUID."""
    return [event(video_id=f"episode-{i:06d}-1080p", view_id=str(uuid.uuid4()))
            for i in range(count)]


def test_a_full_batch_of_realistic_events_fits_the_byte_limit(app: Starlette,
                                                              sink: RecordingSink) -> None:
    docs = realistic(500)
    assert all(len(str(doc["video_id"])) == 20 for doc in docs)
    assert len(orjson.dumps(docs)) <= MAX_BODY  # the array limit is reachable in a beacon
    response = post(app, docs)
    assert (response.status_code, response.json()) == (202, {"accepted": 500})
    assert [e.view_id for e in sink.events] == [doc["view_id"] for doc in docs]


def test_one_event_over_the_limit_is_refused_by_count(app: Starlette,
                                                      sink: RecordingSink) -> None:
    docs = realistic(501)
    assert len(orjson.dumps(docs)) <= MAX_BODY  # so it is the count that refuses it, not 413
    response = post(app, docs)
    assert (response.status_code, response.json()) == (
        400, {"data": [], "errors": ["body: an array must hold 1 to 500 events, got 501"]})
    assert sink.batches == []


def test_the_error_list_is_capped(app: Starlette, sink: RecordingSink) -> None:
    body = orjson.dumps([{}] * 500)
    response = post_raw(app, body)
    assert response.status_code == 400
    assert len(response.content) < 4096  # uncapped, 2500 errors took ~90 KB
    errors = response.json()["errors"]
    assert response.json()["accepted"] == 0
    assert errors[:2] == ["events[0].event: is required", "events[0].client_id: is required"]
    assert len(errors) == 21
    assert errors[-1] == "... and 2480 more errors"  # 500 objects x 5 missing fields - 20
    assert sink.batches == []


def test_a_capped_error_list_still_stores_the_good_events(app: Starlette,
                                                          sink: RecordingSink) -> None:
    docs: list[object] = []
    for i in range(60):
        docs += [event(video_id=f"good-{i}"), event(type="movie")]
    response = post(app, docs)
    assert response.status_code == 400
    assert response.json()["accepted"] == 60
    errors = response.json()["errors"]
    assert errors[0] == "events[1].type: must be one of vod, live, playlist"
    assert errors[-1] == "... and 40 more errors"
    assert [e.video_id for e in sink.events] == [f"good-{i}" for i in range(60)]


def test_good_events_of_a_mixed_batch_are_stored(app: Starlette, sink: RecordingSink) -> None:
    docs = [event(video_id="a"), event(client_id="17"), "junk", event(video_id="b"),
            event(view_id="nope", type="movie")]
    response = post(app, docs)
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == {"accepted": 2, "errors": [
        "events[1].client_id: must be an integer from 0 to 4294967295",
        "events[2]: must be a JSON object",
        "events[4].type: must be one of vod, live, playlist",
        "events[4].view_id: must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    ]}
    assert [e.video_id for e in sink.events] == ["a", "b"]


def test_an_all_bad_batch_stores_nothing(app: Starlette, sink: RecordingSink) -> None:
    response = post(app, {"event": "watch"})
    assert response.status_code == 400
    assert response.json()["accepted"] == 0
    assert sink.batches == []


@pytest.mark.parametrize(
    ("client", "forwarded", "country"),
    [
        (LOCAL, None, "NZ"),  # a trusted peer without a header is the viewer itself
        (("8.8.8.8", 5000), None, "US"),
        (("8.8.8.8", 5000), "1.1.1.1", "US"),  # an untrusted peer's header is ignored
        (LOCAL, "8.8.8.8", "US"),
        (LOCAL, "8.8.8.8, 1.1.1.1", "AU"),  # the right-most hop; the rest is client-written
        (LOCAL, "1.1.1.1:4242", "AU"),
        (LOCAL, "[2001:db8::5]:443", "DE"),
        (("::ffff:127.0.0.1", 5000), "::ffff:8.8.8.8", "US"),
        (("2001:db8::9", 5000), None, "DE"),
        (("10.1.2.3", 5000), None, "ZZ"),  # not in the database
        (LOCAL, "unknown", "NZ"),  # garbage is not believed: the trusted peer stands
        (("testclient", 50000), "8.8.8.8", "ZZ"),  # Starlette TestClient's peer: no address
    ],
)
def test_country_of_the_viewer(app: Starlette, sink: RecordingSink, client: tuple[str, int],
                               forwarded: str | None, country: str) -> None:
    headers = {**BEACON, **({"X-Forwarded-For": forwarded} if forwarded else {})}
    assert post(app, GOOD, headers=headers, client=client).status_code == 202
    assert sink.events[0].country == country


def test_several_forwarded_for_headers_are_read_in_order(app: Starlette,
                                                         sink: RecordingSink) -> None:
    headers = httpx.Headers([("Content-Type", "text/plain"), ("X-Forwarded-For", "8.8.8.8"),
                             ("X-Forwarded-For", "1.1.1.1")])
    assert post(app, GOOD, headers=headers).status_code == 202
    assert sink.events[0].country == "AU"


@pytest.mark.parametrize(
    ("origin", "referer", "host"),
    [
        ("https://Player.Example.COM", "https://other.example/page", "player.example.com"),
        (None, "https://www.example.org:8443/watch?v=1#t", "www.example.org"),
        ("null", "https://www.example.org/watch", "www.example.org"),
        ("null", None, ""),
        (None, None, ""),
        ("http://[2001:db8::1]:8080", None, "2001:db8::1"),
        ("https://" + "a" * 254, "https://fallback.example/", "fallback.example"),
        ("http://[broken", None, ""),
        ("https://<img src=x>", "https://fallback.example/", "fallback.example"),
        ("https://a b", None, ""),
    ],
)
def test_host_of_the_page(app: Starlette, sink: RecordingSink, origin: str | None,
                          referer: str | None, host: str) -> None:
    headers = dict(BEACON)
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    assert post(app, GOOD, headers=headers).status_code == 202
    assert sink.events[0].host == host


# A beacon from the player page in a frame: its Origin and Referer are the platform's, the
# origin its request goes to (the Host header).
PLATFORM = "127.0.0.1:8000"
PLAYER_PAGE = f"http://{PLATFORM}/player/17/v-8812?src=/media/x.m3u8"
FROM_PLAYER_PAGE = {**BEACON, "Host": PLATFORM, "Origin": f"http://{PLATFORM}",
                    "Referer": PLAYER_PAGE}


def test_a_framed_player_counts_the_site_that_embeds_it(app: Starlette,
                                                       sink: RecordingSink) -> None:
    doc = event(embed_url="https://News.Example.com/2024/article.html")
    assert post(app, doc, headers=FROM_PLAYER_PAGE).status_code == 202
    assert sink.events[0].host == "news.example.com"


def test_the_player_opened_by_itself_counts_under_no_host(app: Starlette,
                                                          sink: RecordingSink) -> None:
    assert post(app, event(embed_url=""), headers=FROM_PLAYER_PAGE).status_code == 202
    assert sink.events[0].host == ""


def test_a_customers_page_cannot_claim_another_host(app: Starlette,
                                                    sink: RecordingSink) -> None:
    # A customer's own player on its own page, or any page posting to /events: the browser
    # sets its Origin, so whatever `embed_url` it sends, its views count under its own host.
    headers = {**BEACON, "Host": PLATFORM, "Origin": "https://shop.example"}
    docs = [GOOD, event(embed_url="https://blog.example/post"), event(embed_url="")]
    assert post(app, docs, headers=headers).status_code == 202
    assert [e.host for e in sink.events] == ["shop.example"] * 3


@pytest.mark.parametrize(
    ("origin", "referer", "host"),
    [
        (None, PLAYER_PAGE, PLATFORM),  # no Origin: the Referer names the page
        ("null", PLAYER_PAGE, PLATFORM),
        ("https://stats.example", None, "stats.example"),  # the scheme's default port ...
        ("https://stats.example", None, "stats.example:443"),  # ... named or not
        ("http://Stats.Example:8000", None, "stats.example:8000"),
    ],
)
def test_the_player_page_is_the_origin_the_beacon_is_sent_to(
        app: Starlette, sink: RecordingSink, origin: str | None, referer: str | None,
        host: str) -> None:
    headers = {**BEACON, "Host": host}
    headers.update({name: value for name, value in (("Origin", origin), ("Referer", referer))
                    if value is not None})
    assert post(app, event(embed_url="https://news.example/a"), headers=headers).status_code \
        == 202
    assert sink.events[0].host == "news.example"


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8001", PLATFORM),  # another port is another origin
        ("http://localhost:8000", PLATFORM),  # another host name, the same machine
        ("https://stats.example", "stats.example:80"),  # https's port is 443
        ("http://127.0.0.1:8000", "[broken"),
    ],
)
def test_a_page_on_another_origin_is_not_the_player_page(
        app: Starlette, sink: RecordingSink, origin: str, host: str) -> None:
    headers = {**BEACON, "Host": host, "Origin": origin}
    assert post(app, event(embed_url="https://news.example/a"), headers=headers).status_code \
        == 202
    assert sink.events[0].host == request_page(origin, None)[0]


def test_a_bad_embed_url_refuses_its_event_only(app: Starlette, sink: RecordingSink) -> None:
    docs = [event(embed_url=None), event(video_id="kept", embed_url="http://localhost:81/")]
    response = post(app, docs, headers=FROM_PLAYER_PAGE)
    assert (response.status_code, response.json()) == (400, {"accepted": 1, "errors": [
        "events[0].embed_url: must be a string of at most 4096 characters"]})
    assert [(e.video_id, e.host) for e in sink.events] == [("kept", "localhost")]


def test_request_page_keeps_a_253_character_name() -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert request_page(f"https://{name}", None) == (name, f"https://{name}/")


def test_a_sink_failure_is_a_503_that_leaks_nothing(
        app: Starlette, sink: RecordingSink, caplog: pytest.LogCaptureFixture) -> None:
    sink.failure = OSError(SECRET)
    with caplog.at_level(logging.ERROR, logger="viewstats.ingest.collector.endpoint"):
        response = post(app, [GOOD, GOOD])
    assert response.status_code == 503
    assert response.json() == {"data": [], "errors": ["events could not be stored, retry"]}
    assert SECRET not in response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert any(record.exc_info and record.exc_info[1] is sink.failure
               for record in caplog.records)


def test_cors_preflight(app: Starlette) -> None:
    headers = {"Origin": "https://player.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    response = request(app, headers=headers, method="OPTIONS")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"].lower() == "content-type"
    assert int(response.headers["access-control-max-age"]) > 0


def test_other_methods_are_refused_in_the_error_shape(app: Starlette) -> None:
    response = request(app, method="GET")
    assert response.status_code == 405
    assert response.json()["data"] == []


def test_the_default_limit_and_clock(sink: RecordingSink, resolver: CountryResolver) -> None:
    app = build_app(Collector(sink, resolver, TRUSTED).routes())
    assert post(app, GOOD).status_code == 202
    stamped = sink.events[0].ts_ms
    assert 1_700_000_000_000 < stamped < 4_102_444_800_000
    assert post_raw(app, padded(64 * 1024 + 1)).status_code == 413


def test_each_event_carries_the_audience_the_request_names(tmp_path: Path) -> None:
    """Browser, os and platform from the User-Agent, region with country from one City
    lookup, the embedding page without its query, and the viewer's keyed hash: every event of
    the request gets the same, and the address itself is in none of them."""
    city = write_raw_mmdb(tmp_path / "city.mmdb",
                          {"203.0.113.0/24": dbip_city_record("US", "California")}, "city")
    keys = ViewerKeys(b"k" * 32)
    sink = RecordingSink()
    with CountryResolver(city) as resolver:
        app = build_app(Collector(sink, resolver, TRUSTED, viewer_keys=keys,
                                  clock=lambda: NOW_MS).routes())
        response = request(app, orjson.dumps([GOOD, {**GOOD, "event": "init"}]), headers={
            **BEACON, "X-Forwarded-For": "203.0.113.9", "Origin": "https://site.example",
            "Referer": "https://site.example/films/7?session=abc#t=5",
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
                          "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 "
                          "Safari/604.1"})
    assert response.status_code == 202, response.text
    audience = {(e.country, e.region, e.host, e.embed_url, e.browser, e.os, e.platform, e.viewer)
                for e in sink.events}
    assert audience == {("US", "US-CA", "site.example", "https://site.example/films/7",
                         "Mobile Safari", "iOS", "mobile", keys.key(ip_address("203.0.113.9")))}
    assert not any("203.0.113.9" in str(value) for e in sink.events
                   for value in dataclasses.astuple(e))


@pytest.mark.parametrize(("origin", "referer", "expected"), [
    ("https://a.example", "https://b.example/x", ("a.example", "https://a.example/")),
    (None, "https://b.example/x?y=1", ("b.example", "https://b.example/x")),
    ("null", None, ("", "")),
    ("https://a.example:8443", "https://a.example:8443/p", ("a.example",
                                                             "https://a.example:8443/p")),
])
def test_the_page_is_the_referer_only_when_it_names_the_origins_host(
        origin: str | None, referer: str | None, expected: tuple[str, str]) -> None:
    assert request_page(origin, referer) == expected
