"""parse_body and validate: the field rules of architecture §3, with their boundaries."""

from __future__ import annotations

import orjson
import pytest

from viewstats.core.events import PlayerEvent
from viewstats.core.hosts import host_name, url_host
from viewstats.core.responses import MAX_ERRORS, capped_errors
from viewstats.ingest.collector.validation import (
    MAX_EMBED_URL,
    MAX_EVENTS,
    BodyError,
    Stamp,
    parse_body,
    validate,
)

VIEW_ID = "3f2b8c1e-9d4a-4f6b-8a2c-1e5d7b9f0a3c"
STAMP = Stamp(1_717_000_000_123, "AU", "example.com", "https://example.com/")
GOOD = {"event": "watch", "client_id": 17, "video_id": "v-8812", "type": "vod",
        "view_id": VIEW_ID}


def check(raw: object, index: int = 0, *,
          from_player_page: bool = True) -> PlayerEvent | list[str]:
    return validate(raw, index, STAMP, from_player_page=from_player_page)


def errors_of(raw: object, index: int = 0) -> list[str]:
    result = check(raw, index)
    assert isinstance(result, list), result
    return result


def with_field(name: str, value: object) -> dict[str, object]:
    return {**GOOD, name: value}


def test_a_good_event_is_stamped_with_the_collector_fields() -> None:
    assert check(GOOD) == PlayerEvent(
        client_id=17, ts_ms=1_717_000_000_123, event="watch", type="vod", video_id="v-8812",
        view_id=VIEW_ID, country="AU", host="example.com", embed_url="https://example.com/")


def test_client_supplied_collector_fields_and_unknown_fields_are_ignored() -> None:
    raw = {**GOOD, "ts": 1, "country": "US", "host": "evil.example", "extra": [1, {"a": 2}]}
    event = check(raw)
    assert isinstance(event, PlayerEvent)
    assert (event.ts_ms, event.country, event.host) == (1_717_000_000_123, "AU", "example.com")


@pytest.mark.parametrize("name", ["init", "start", "watch"])
def test_every_event_name_is_accepted(name: str) -> None:
    assert isinstance(check(with_field("event", name)), PlayerEvent)


@pytest.mark.parametrize("kind", ["vod", "live", "playlist"])
def test_every_video_type_is_accepted(kind: str) -> None:
    assert isinstance(check(with_field("type", kind)), PlayerEvent)


@pytest.mark.parametrize("value", ["view", "WATCH", "", None, 1, ["watch"]])
def test_bad_event(value: object) -> None:
    assert errors_of(with_field("event", value), 3) == [
        "events[3].event: must be one of init, start, watch"]


@pytest.mark.parametrize("value", ["VOD", "clip", "", None, 0, {"vod": 1}])
def test_bad_type(value: object) -> None:
    assert errors_of(with_field("type", value)) == [
        "events[0].type: must be one of vod, live, playlist"]


@pytest.mark.parametrize("value", [0, 1, 2**32 - 1])
def test_client_id_range_is_inclusive(value: int) -> None:
    event = check(with_field("client_id", value))
    assert isinstance(event, PlayerEvent)
    assert event.client_id == value


@pytest.mark.parametrize("value", [-1, 2**32, 2**64, True, False, 1.0, 17.5, "17", None, [17]])
def test_bad_client_id(value: object) -> None:
    assert errors_of(with_field("client_id", value), 1) == [
        "events[1].client_id: must be an integer from 0 to 4294967295"]


@pytest.mark.parametrize("value", ["v", "x" * 256, "видео-1"])
def test_good_video_id(value: str) -> None:
    assert isinstance(check(with_field("video_id", value)), PlayerEvent)


@pytest.mark.parametrize("value", ["", "x" * 257, 8812, None, ["v"]])
def test_bad_video_id(value: object) -> None:
    assert errors_of(with_field("video_id", value)) == [
        "events[0].video_id: must be a non-empty string of at most 256 characters"]


def test_view_id_is_stored_lower_case() -> None:
    event = check(with_field("view_id", VIEW_ID.upper()))
    assert isinstance(event, PlayerEvent)
    assert event.view_id == VIEW_ID


@pytest.mark.parametrize(
    "value",
    [VIEW_ID.replace("-", ""), "{" + VIEW_ID + "}", "urn:uuid:" + VIEW_ID, VIEW_ID + " ",
     VIEW_ID[:-1] + "g", VIEW_ID[:-1], "", None, 42],
)
def test_bad_view_id(value: object) -> None:
    assert errors_of(with_field("view_id", value), 3) == [
        "events[3].view_id: must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"]


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("https://News.Example.COM/2024/05/article.html", "news.example.com"),
        ("http://localhost:8123/", "localhost"),  # the default referrer policy: origin only
        ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
        ("", ""),  # nothing embeds the player: not the request's host either
        ("about:blank", ""),
        ("not a url", ""),
        ("http://[broken", ""),
        ("https://" + "a" * 254 + "/", ""),  # longer than a DNS name
        ("https://<img src=x>/", ""),  # no host name: not the request's host either
    ],
)
def test_embed_url_gives_the_host_instead_of_the_request(value: str, host: str) -> None:
    event = check(with_field("embed_url", value))
    assert isinstance(event, PlayerEvent)
    assert event.host == host


@pytest.mark.parametrize("value", ["https://other.example/page", ""])
def test_embed_url_from_any_other_page_names_nothing(value: str) -> None:
    # Another site's page, or a customer's own player: the host of its Origin/Referer stands.
    event = check(with_field("embed_url", value), from_player_page=False)
    assert isinstance(event, PlayerEvent)
    assert event.host == "example.com"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.Example.com:8443/path", "www.example.com"),
        ("http://127.0.0.1:8000/", "127.0.0.1"),
        ("https://my-site-2.example/", "my-site-2.example"),
        ("https://example.com./", "example.com"),  # fully qualified: the same host
        ("https://Bücher.example/", "xn--bcher-kva.example"),  # IDNA, as a browser sends it
        ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("http://[2001:db8:0:0::1]/", "2001:db8::1"),
        ("https://" + ".".join(["a" * 63] * 3 + ["b" * 61]) + "/",
         ".".join(["a" * 63] * 3 + ["b" * 61])),  # 253 characters, the longest DNS name
    ],
)
def test_url_host_gives_a_valid_host_name(url: str, host: str) -> None:
    assert url_host(url) == host


@pytest.mark.parametrize(
    "url",
    ["https://<img src=x>/", "https://a b/", "https://a\"b/", "https://a_b.example/",
     "https://a..b/", "https://" + "a" * 64 + ".example/", "https://" + "a." * 127 + "bc/",
     "https://ex%41mple.com/", "http://[fe80::1%25eth0]/", "http://[::1%25<b>]/",
     "http://[broken/", "https:///path", "null", ""],
)
def test_url_host_refuses_anything_else(url: str) -> None:
    assert url_host(url) is None


@pytest.mark.parametrize(
    ("given", "host"),
    [("A.EXAMPLE", "a.example"), ("Bücher.Example.", "xn--bcher-kva.example"),
     ("[2001:DB8::1]", "2001:db8::1"), ("2001:db8:0::1", "2001:db8::1"),
     ("sp ace.example", None), ("a\"b'c.example", None), ("a/b", None)],
)
def test_host_name_spells_a_bare_host_as_url_host_does(given: str, host: str | None) -> None:
    # What a `host=` filter names is compared with what the collector stored.
    assert host_name(given) == host


def test_embed_url_up_to_its_limit_is_accepted() -> None:
    page = "https://site.example/"
    event = check(with_field("embed_url", page + "p" * (MAX_EMBED_URL - len(page))))
    assert isinstance(event, PlayerEvent)
    assert event.host == "site.example"


@pytest.mark.parametrize(
    "value", [None, 17, True, ["https://site.example/"], {"href": "https://site.example/"},
              "https://site.example/" + "p" * MAX_EMBED_URL])
def test_bad_embed_url(value: object) -> None:
    assert errors_of(with_field("embed_url", value), 2) == [
        "events[2].embed_url: must be a string of at most 4096 characters"]


def test_every_bad_field_is_named_and_missing_ones_are_called_required() -> None:
    assert errors_of({"event": "play", "client_id": -1}, 7) == [
        "events[7].event: must be one of init, start, watch",
        "events[7].client_id: must be an integer from 0 to 4294967295",
        "events[7].video_id: is required",
        "events[7].type: is required",
        "events[7].view_id: is required",
    ]


@pytest.mark.parametrize("raw", [[GOOD], "watch", 17, None])
def test_an_event_must_be_an_object(raw: object) -> None:
    assert errors_of(raw, 2) == ["events[2]: must be a JSON object"]


def test_parse_body_takes_one_object_or_an_array() -> None:
    assert parse_body(orjson.dumps(GOOD)) == [GOOD]
    assert parse_body(orjson.dumps([GOOD, 5])) == [GOOD, 5]


def test_parse_body_takes_up_to_the_event_limit() -> None:
    assert MAX_EVENTS == 500
    assert len(parse_body(orjson.dumps([GOOD] * 500))) == 500
    with pytest.raises(BodyError, match=r"1 to 500 events, got 501"):
        parse_body(orjson.dumps([GOOD] * 501))


def test_errors_are_capped_with_a_count_of_the_rest() -> None:
    few = [f"e{i}" for i in range(MAX_ERRORS)]
    assert capped_errors(few) == few
    many = [f"e{i}" for i in range(MAX_ERRORS + 4980)]
    assert capped_errors(many) == [*many[:MAX_ERRORS], "... and 4980 more errors"]
    assert capped_errors([]) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"{'event': 'watch'}", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[]", "1 to 500 events, got 0"),
        (b'"watch"', "must be a JSON object or an array"),
        (b"17", "must be a JSON object or an array"),
        (b"null", "must be a JSON object or an array"),
    ],
)
def test_parse_body_refuses_what_is_not_a_batch(body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse_body(body)
