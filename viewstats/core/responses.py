"""Responses in Gcore's shapes: `{"data": [...]}` and `{"data": [], "errors": [...]}`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from starlette.responses import Response


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
    return json_response({"data": [], "errors": list(errors)}, status_code, headers)


def internal_error() -> Response:
    """The cause is logged by the caller and never sent to the client."""
    return error_response(500, ["internal server error"])
