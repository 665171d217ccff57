"""English CLDR country names (babel), with `ZZ` for viewers whose country is unknown."""

from __future__ import annotations

from functools import cache

from babel import Locale

UNKNOWN = "ZZ"


@cache
def _territories() -> dict[str, str]:
    return dict(Locale("en").territories)


def country_name(code: str) -> str:
    if code == UNKNOWN:
        return "Unknown"
    return _territories().get(code, code)
