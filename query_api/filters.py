"""The statistics family's own query parameters (architecture §15): the `id`, `country`, `host`
and `event` filters every endpoint takes, `group`, `granularity` and `limit`, and the check
that names any other. Like `params`, each parser appends every problem to `errors`, each naming
its parameter, so that one 400 names them all.
"""

from __future__ import annotations

from starlette.requests import Request

from viewstats.core.events import EVENTS, MAX_HOST, MAX_VIDEO_ID
from viewstats.core.hosts import host_name
from viewstats.query_api.breakdown import Bucket
from viewstats.query_api.params import single

FILTERS = ("id", "country", "host")  # each compares its field to the value given
# What every endpoint takes (the window and `type` are read by `params`); each adds its own.
COMMON = ("date_from", "date_to", "type", *FILTERS, "event")
# The order rows are keyed and sorted in.
GROUP_FIELDS = ("host", "country", "event", "id", "browser", "os", "platform")
NOT_STORED = "ip"  # Gcore's other group: the collector keeps no viewer's IP (architecture §3)
GRANULARITIES: dict[str, Bucket] = {"1d": "day", "1h": "hour"}
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_MAX_LENGTHS = {"id": MAX_VIDEO_ID, "host": MAX_HOST}
_MAX_NAME = 64  # of an unknown name echoed in its error


def selection(request: Request, errors: list[str]) -> tuple[dict[str, str], str | None]:
    """The filters the request sets (field -> value, of FILTERS) and the event it counts (None:
    the endpoint's default, watch)."""
    found = {}
    for name in FILTERS:
        value = single(request, name, errors, required=False)
        if value is None:
            continue
        if name == "country":
            if not (len(value) == 2 and value.isascii() and value.isalpha()):
                errors.append("country: must be an ISO 3166-1 alpha-2 code, e.g. AU")
                continue
            value = value.upper()
        elif len(value) > _MAX_LENGTHS[name]:
            errors.append(f"{name}: at most {_MAX_LENGTHS[name]} characters")
            continue
        elif name == "host":
            # Spelled as the collector stores hosts (lower case, IDNA), so that A.EXAMPLE finds
            # a.example; what is no host name is taken as given: it can only name rows stored
            # before the collector checked hosts (architecture §3).
            value = host_name(value) or value
        found[name] = value
    event = single(request, "event", errors, required=False)
    if event is not None and event not in EVENTS:
        errors.append(f"event: must be one of {', '.join(EVENTS)}")
        event = None
    return found, event


def unknown(request: Request, errors: list[str], own: tuple[str, ...] = ()) -> None:
    """Names each query parameter the endpoint does not take (COMMON and its `own`): one it
    ignored would answer another question than the one asked, e.g. `/hosts?country=AU` with
    every country's views."""
    takes = (*COMMON, *own)
    for name in request.query_params:  # each name once, in order
        if name not in takes:
            errors.append(f"{name[:_MAX_NAME]}: unknown query param; this endpoint takes "
                          f"{', '.join(takes)}")


def group(request: Request, errors: list[str],
          fields: tuple[str, ...] = GROUP_FIELDS) -> tuple[str, ...]:
    """`group=host,country` or `group=host&group=country`, in the order of `fields`."""
    asked = {part.strip() for value in request.query_params.getlist("group")
             for part in value.split(",") if part.strip()}
    for name in sorted(asked - set(fields)):
        if name == NOT_STORED:
            errors.append(f"group: ip cannot be grouped by: viewer IPs are not stored; group "
                          f"by {', '.join(fields)}")
        else:
            errors.append(f"group: unknown field {name[:_MAX_NAME]!r}; group by "
                          f"{', '.join(fields)}")
    return tuple(name for name in fields if name in asked)


def granularity(request: Request, errors: list[str]) -> Bucket:
    value = single(request, "granularity", errors, required=False) or "1d"
    if value not in GRANULARITIES:
        errors.append(f"granularity: must be one of {', '.join(GRANULARITIES)}")
        return "day"
    return GRANULARITIES[value]


def limit(request: Request, errors: list[str],
          default: int | None = DEFAULT_LIMIT) -> int | None:
    """`limit`, or `default` when unset or bad (None: no limit but the row cap)."""
    value = single(request, "limit", errors, required=False)
    if value is None:
        return default
    if not (len(value) <= 4 and value.isascii() and value.isdigit()
            and 1 <= int(value) <= MAX_LIMIT):
        errors.append(f"limit: must be a whole number from 1 to {MAX_LIMIT}")
        return default
    return int(value)
