"""The countries endpoint's `id` and `host` filters (an extension, architecture §15): the
countries of one video's or one host's views, a breakdown like any other."""

from __future__ import annotations

from starlette.requests import Request

from viewstats.query_api import filters


def country_filters(request: Request, errors: list[str]) -> tuple[str | None, str | None]:
    """(video id, host) the request filters by, each None when unset; problems go to errors."""
    found = filters.filters(request, errors, ("id", "host"))
    return found.get("id"), found.get("host")
