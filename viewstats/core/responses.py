"""Responses in Gcore's shapes: `{"data": [...]}` and `{"data": [], "errors": [...]}`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from starlette.responses import Response

# An answer names at most this many errors, then how many more it left out: otherwise a body of
# 500 empty events (5 errors each) or an 8 KB `group=aa,ab,…` gets an answer many times its own
# size.
MAX_ERRORS = 20


def json_response(body: object, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    return encoded_json(orjson.dumps(body), status_code, headers)


def encoded_json(body: bytes, status_code: int = 200,
                 headers: Mapping[str, str] | None = None) -> Response:
    """A JSON body encoded already: a large answer is encoded in a worker thread, so that the
    event loop only sends it."""
    return Response(body, status_code=status_code, headers=headers,
                    media_type="application/json")


def error_response(status_code: int, errors: Sequence[str],
                   headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"data": [], "errors": capped_errors(errors)}, status_code, headers)


def capped_errors(errors: Sequence[str]) -> list[str]:
    """The first `MAX_ERRORS` of `errors`, plus one entry counting the rest if there are any."""
    if len(errors) <= MAX_ERRORS:
        return list(errors)
    return [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors"]


def internal_error() -> Response:
    """The cause is logged by the caller and never sent to the client."""
    return error_response(500, ["internal server error"])
