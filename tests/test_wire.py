"""The Kafka message of a player event (ingest/wire.py): the consumer's batch decoding takes and
refuses exactly what the one-message `decode` does, and gives ClickHouse the same rows."""

from __future__ import annotations

import dataclasses
import random

import orjson
import pytest

from viewstats.core.events import MAX_CLIENT_ID, MAX_TS_MS, PlayerEvent, as_row
from viewstats.ingest import wire

EVENT = PlayerEvent(17, 1_714_521_600_123, "watch", "vod", "v-8812",
                    "0f8fad5b-d9cb-469f-a165-70867728950e", "AU", "example.com")


def _json(**changes: object) -> bytes:
    return orjson.dumps({**as_row(EVENT), **changes})


# Each is one message; `decode` takes some (other spellings of a valid event) and refuses others.
ODD_MESSAGES = [
    None, b"", b"{", b"[]", b"null", b'"watch"',
    _json(client_id=MAX_CLIENT_ID), _json(client_id=MAX_CLIENT_ID + 1), _json(client_id=-1),
    _json(client_id=0), _json(client_id=1.0), _json(client_id="17"), _json(client_id=True),
    _json(ts=MAX_TS_MS - 1), _json(ts=MAX_TS_MS), _json(ts=0), _json(ts=999), _json(ts=None),
    _json(event="view"), _json(event="WATCH"), _json(type="movie"),
    _json(video_id=""), _json(video_id="v" * 256), _json(video_id="v" * 257),
    _json(video_id="é" * 256), _json(video_id="é" * 257), _json(video_id='a"b'),
    _json(video_id="a'b"), _json(video_id="a\\b"), _json(video_id="a\nb"), _json(video_id="a\x00"),
    _json(view_id=EVENT.view_id.upper()), _json(view_id="not-a-uuid"),
    _json(view_id=EVENT.view_id.replace("-", "")),
    _json(country="au"), _json(country="AUS"), _json(country="ZZ"),
    _json(host=""), _json(host="h" * 253), _json(host="h" * 254), _json(host="ä.example"),
    _json(extra=1), orjson.dumps({k: v for k, v in as_row(EVENT).items() if k != "host"}),
    orjson.dumps(dict(reversed(as_row(EVENT).items()))),  # another field order
    orjson.dumps(as_row(EVENT), option=orjson.OPT_INDENT_2),  # another layout, line breaks
    b'{"client_id":017' + _json()[len(b'{"client_id":17'):],  # a leading zero: not JSON
    _json()[:-1] + b',"host":"other.example"}',  # a field twice: JSON keeps the last
    _json() + b"\n" + _json(view_id="1f8fad5b-d9cb-469f-a165-70867728950e"),  # two in one
    _json() + b" ", b" " + _json(), _json().replace(b":", b": "),
]


def _expected(values: list[bytes | None]) -> tuple[list[PlayerEvent], list[int]]:
    events, rejected = [], []
    for index, value in enumerate(values):
        try:
            events.append(wire.decode(value))
        except wire.DecodeError:
            rejected.append(index)
    return events, rejected


def _events_of(rows: wire.Rows) -> list[PlayerEvent]:
    """What ClickHouse stores of the rows: their JSON's fields (the engine parses them)."""
    return [PlayerEvent(**{("ts_ms" if k == "ts" else k): v for k, v in orjson.loads(line).items()})
            for line in rows.lines]


def _check(values: list[bytes | None]) -> wire.Rows:
    rows, rejected = wire.decode_many(values)
    events, refused = _expected(values)
    assert [index for index, _ in rejected] == refused
    assert _events_of(rows) == events
    assert rows.keys == [wire.dedup_key(e.client_id, e.view_id, e.event) for e in events]
    assert rows.ts_ms == [e.ts_ms for e in events]
    assert rows.client_ids == {e.client_id for e in events}
    return rows


def test_encode_writes_the_row_in_column_order() -> None:
    """`encode` builds the row without `as_row`; the consumer's pattern needs the same text."""
    assert wire.encode(EVENT) == orjson.dumps(as_row(EVENT))
    assert list(orjson.loads(wire.encode(EVENT))) == ["client_id", "ts", "event", "type",
                                                      "video_id", "view_id", "country", "host",
                                                          "browser", "os", "platform", "region",
                                                          "embed_url", "viewer"]


def test_the_collectors_messages_are_taken_whole_as_they_are() -> None:
    values = [wire.encode(EVENT), _json(client_id=0, ts=0, host=""), _json(video_id="v" * 256)]
    rows = _check(values)  # type: ignore[arg-type]
    assert rows.lines == values  # the message's own bytes: nothing re-encoded


@pytest.mark.parametrize("odd", range(len(ODD_MESSAGES)))
def test_an_odd_message_among_good_ones_is_decoded_as_decode_does(odd: int) -> None:
    good = [wire.encode(EVENT), _json(client_id=18)]
    values = [good[0], ODD_MESSAGES[odd], good[1]]
    _check(values)


def test_a_message_of_two_valid_lines_is_never_taken_for_two_events() -> None:
    two = _json() + b"\n" + _json(view_id="1f8fad5b-d9cb-469f-a165-70867728950e")
    rows, rejected = wire.decode_many([two, b"x"])  # 2 lines of events, 1 of garbage: 3 lines
    assert len(rows) == 0 and [index for index, _ in rejected] == [0, 1]
    rows, rejected = wire.decode_many([two])
    assert len(rows) == 0 and rejected[0][1].startswith("not JSON")


def test_reasons_name_the_field() -> None:
    _, rejected = wire.decode_many([_json(country="au"), None, _json(ts=MAX_TS_MS)])
    assert [reason for _, reason in rejected] == [
        "country: not an ISO 3166-1 alpha-2 code", "empty message", "ts: out of range"]


def test_random_fields_agree_with_decode() -> None:
    rng = random.Random(7)
    limits = [0, 1, 9, 10, 99, 100, 4_294_967_294, MAX_CLIENT_ID, MAX_CLIENT_ID + 1, 10**10]
    stamps = [0, 1, 999, 1000, 10**12, MAX_TS_MS - 1, MAX_TS_MS, MAX_TS_MS + 1, 10**13 - 1]
    values: list[bytes | None] = []
    for _ in range(2000):
        video_id = "".join(rng.choices("ab'\"\\é \t", k=rng.choice([1, 5, 256])))
        values.append(_json(client_id=rng.choice([*limits, rng.randrange(2**33)]),
                            ts=rng.choice([*stamps, rng.randrange(5 * 10**12)]),
                            video_id=video_id))
    _check(values)


def test_a_message_from_a_collector_before_the_audience_reads_as_unknown() -> None:
    """Kafka may still hold messages an older collector wrote, without the audience fields:
    they are events like rows stored before them (unknown device, no region, page or viewer),
    not poison."""
    old = {name: value for name, value in as_row(EVENT).items()
           if name in ("client_id", "ts", "event", "type", "video_id", "view_id", "country",
                       "host")}
    rows, rejected = wire.decode_many([wire.encode(EVENT), orjson.dumps(old)])
    assert rejected == [] and len(rows) == 2
    assert orjson.loads(rows.lines[1]) == as_row(
        PlayerEvent(*(old[name] for name in old)))  # type: ignore[arg-type]
    assert orjson.loads(rows.lines[1])["browser"] == "unknown"
    assert orjson.loads(rows.lines[1])["viewer"] == 0


def test_the_audience_fields_are_taken_whole_at_their_limits() -> None:
    rich = dataclasses.replace(EVENT, browser="B" * 64, os="Mac OS X", platform="tv",
                               region="GB-ENG", embed_url="https://a.example/" + "p" * 1000,
                               viewer=2**64 - 1)
    assert wire._LINE.fullmatch(wire.encode(rich)) is not None
    assert wire.decode(wire.encode(rich)) == rich
