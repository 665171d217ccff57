"""Turn a `POST /events` body into player events (architecture §3).

`parse_body` rejects a body that is unusable as a whole; `validate` checks one event and names
every bad field, so the good events of a request can be kept while the bad ones are reported.
The fields the collector adds (a `Stamp`: the time, where the viewer is, what it runs, the page
and the viewer key) are never read from the client: a client that sends them is ignored like any
other unknown field. `host` and `embed_url` are derived from the request, or, when the
platform's own player page sent it, from the event's `embed_url` (`validate`).
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from viewstats.core.events import (
    EVENTS,
    MAX_CLIENT_ID,
    MAX_VIDEO_ID,
    UNKNOWN,
    VIDEO_TYPES,
    VIEW_ID,
    PlayerEvent,
)
from viewstats.core.hosts import page_url, url_host

# The collector's byte limit (collector.MAX_BODY) is 64 KiB because sendBeacon and keepalive
# fetch refuse more than that in flight, so this limit must be reachable inside it. A typical
# event is 128 bytes (a 20-character video_id, a UUID, a short client_id, no white space),
# 129 with its comma in an array: 500 take 64,501 of the 65,536 bytes, while 1000 never fit.
MAX_EVENTS = 500
# Chromium and Firefox cut a Referer longer than 4096 bytes, and so document.referrer, down to
# its origin: no browser hands the player a longer URL of the page that embeds it.
MAX_EMBED_URL = 4096

_EVENT_ERROR = "must be one of " + ", ".join(EVENTS)
_TYPE_ERROR = "must be one of " + ", ".join(VIDEO_TYPES)
_CLIENT_ID_ERROR = f"must be an integer from 0 to {MAX_CLIENT_ID}"
_VIDEO_ID_ERROR = f"must be a non-empty string of at most {MAX_VIDEO_ID} characters"
_VIEW_ID_ERROR = "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
_EMBED_URL_ERROR = f"must be a string of at most {MAX_EMBED_URL} characters"


class Stamp(NamedTuple):
    """What the collector derives from one request, the same for each of its events."""

    ts_ms: int  # receive time, epoch ms UTC
    country: str
    host: str  # the page that sent the request ("" when unknown)
    embed_url: str  # that page's `page_url` ("" when unknown)
    region: str = ""
    browser: str = UNKNOWN
    os: str = UNKNOWN
    platform: str = UNKNOWN
    viewer: int = 0


class BodyError(ValueError):
    """The body as a whole is not a batch of events; the message is safe to show the client."""


def parse_body(body: bytes) -> list[object]:
    """The events of a body holding one JSON object or an array of 1 to `MAX_EVENTS` items."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BodyError("body: not valid JSON") from None
    if isinstance(doc, dict):
        return [doc]
    if not isinstance(doc, list):
        raise BodyError("body: must be a JSON object or an array of objects")
    if not 1 <= len(doc) <= MAX_EVENTS:
        raise BodyError(f"body: an array must hold 1 to {MAX_EVENTS} events, got {len(doc)}")
    return doc


def validate(raw: object, index: int, stamp: Stamp, *,
             from_player_page: bool) -> PlayerEvent | list[str]:
    """The event `raw` stamped with the collector's fields, or one error per bad field.

    When the request came from the platform's own player page (`from_player_page`), an event
    with `embed_url` takes its page and host from that instead of the stamp's, "" for an empty
    URL or one that is no http(s) page with a valid host; from any other page `embed_url` is
    checked but names nothing (architecture §3).
    """
    if not isinstance(raw, dict):
        return [f"events[{index}]: must be a JSON object"]
    event = raw.get("event")
    client_id = raw.get("client_id")
    video_id = raw.get("video_id")
    kind = raw.get("type")
    view_id = raw.get("view_id")
    embed_url = raw.get("embed_url")
    errors: list[tuple[str, str]] = []
    # `type(x) is ...` rather than isinstance: JSON true is a Python bool, which is an int.
    if type(event) is not str or event not in EVENTS:
        errors.append(("event", _EVENT_ERROR))
    if type(client_id) is not int or not 0 <= client_id <= MAX_CLIENT_ID:
        errors.append(("client_id", _CLIENT_ID_ERROR))
    if type(video_id) is not str or not 0 < len(video_id) <= MAX_VIDEO_ID:
        errors.append(("video_id", _VIDEO_ID_ERROR))
    if type(kind) is not str or kind not in VIDEO_TYPES:
        errors.append(("type", _TYPE_ERROR))
    if type(view_id) is not str or VIEW_ID.fullmatch(view_id) is None:
        errors.append(("view_id", _VIEW_ID_ERROR))
    if "embed_url" in raw and (type(embed_url) is not str or len(embed_url) > MAX_EMBED_URL):
        errors.append(("embed_url", _EMBED_URL_ERROR))
    if errors:
        return [f"events[{index}].{name}: {message if name in raw else 'is required'}"
                for name, message in errors]
    assert isinstance(client_id, int) and isinstance(event, str) and isinstance(kind, str)
    assert isinstance(video_id, str) and isinstance(view_id, str)
    host, page = stamp.host, stamp.embed_url
    if from_player_page and isinstance(embed_url, str):
        # Sent from inside an iframe, the request names the player's page, on the platform's
        # own host: the page embedding it is the site. The player sends "" when nothing embeds
        # it, and then neither does the request's host count, for it is still the platform's.
        # Only the player page's word is taken: a customer's page that sends `embed_url` would
        # otherwise count its visitors' views under any site it names, where its Origin, set
        # by the browser, names its own.
        page = page_url(embed_url)
        host = (url_host(page) or "") if page else ""
    return PlayerEvent(client_id, stamp.ts_ms, event, kind, video_id, view_id.lower(),
                       stamp.country, host, stamp.browser, stamp.os, stamp.platform,
                       stamp.region, page, stamp.viewer)
