"""Query parameters every statistics endpoint shares: one value per name, the window, `type`.

Every problem is collected rather than raised at the first, so that one 400 names them all.
"""

from __future__ import annotations

from starlette.requests import Request

from viewstats.core.events import VIDEO_TYPES
from viewstats.query_api.window import Window, WindowError, parse_window


def single(request: Request, name: str, errors: list[str], *, required: bool) -> str | None:
    values = request.query_params.getlist(name)
    if not values:
        if required:
            errors.append(f"{name}: query param is not set")
        return None
    if len(values) > 1:
        errors.append(f"{name}: query param is set more than once")
        return None
    if not values[0]:
        errors.append(f"{name}: query param is empty")
        return None
    return values[0]


def window_and_type(request: Request, errors: list[str]) -> tuple[Window | None, str | None]:
    """`date_from`/`date_to` and the optional `type`, with any problem appended to errors."""
    date_from = single(request, "date_from", errors, required=True)
    date_to = single(request, "date_to", errors, required=True)
    event_type = single(request, "type", errors, required=False)
    if event_type is not None and event_type not in VIDEO_TYPES:
        errors.append(f"type: must be one of {', '.join(VIDEO_TYPES)}")
    window = None
    if date_from is not None and date_to is not None:
        try:
            window = parse_window(date_from, date_to)
        except WindowError as exc:
            errors.append(str(exc))
    return window, event_type
