"""`Authorization: apikey <key_id>$<secret>` (architecture §7)."""

from __future__ import annotations

from starlette.requests import Request

from viewstats.core.keys import KeyStore

SCHEME = "apikey"


def authenticate(request: Request, keys: KeyStore) -> int | None:
    """The client_id the request's key belongs to, or None when it has no valid key."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != SCHEME or not token:
        return None
    return keys.authenticate(token.strip())
