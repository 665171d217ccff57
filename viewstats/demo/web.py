"""How the demo talks to the platform: urllib, as the demo needs no dependency the platform
does not have."""

from __future__ import annotations

import urllib.request
from http.client import HTTPResponse

HTTP_TIMEOUT = 10.0


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


def open_url(url: str, headers: dict[str, str], body: bytes | None = None) -> HTTPResponse:
    # Every URL here starts with a base URL that run_demo checked to be http(s).
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310
    response: HTTPResponse = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)  # noqa: S310
    return response
