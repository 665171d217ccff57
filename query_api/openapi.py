"""The OpenAPI description served at `/openapi.json`: Gcore's countries contract
(its facts: `tests/fixtures/gcore_countries_contract.yaml`) plus the additive 401, 429 and 503
responses and `type` filter, and the statistics family beside it (architecture §15) in the
shapes Gcore's SDK parses."""

from __future__ import annotations

from typing import Any

from viewstats.core.events import EVENTS, MAX_HOST, MAX_VIDEO_ID, VIDEO_TYPES
from viewstats.core.settings import Settings
from viewstats.query_api.audience import BROWSERS, EMBEDS, REGIONS, SYSTEMS
from viewstats.query_api.countries import NARROW as COUNTRIES_NARROW
from viewstats.query_api.filters import DEFAULT_LIMIT, GRANULARITIES, GROUP_FIELDS, MAX_LIMIT
from viewstats.query_api.hosts import HOSTS
from viewstats.query_api.popular import POPULAR
from viewstats.query_api.ranked import Ranked
from viewstats.query_api.uniqs import GROUPS as UNIQS_GROUPS
from viewstats.query_api.uniqs import NARROW as UNIQS_NARROW
from viewstats.query_api.views import NARROW as VIEWS_NARROW

_ERROR = {"$ref": "#/components/schemas/error_common"}
_PLAYER_ONLY = ("Counts only what the built-in HTML player reported. Times are UTC; a window "
                "is exact to the millisecond at any offset.")


def _error(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": _ERROR, "example": {"data": [], "errors": [example]}}}}


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before asking again.",
                                "schema": {"type": "integer", "minimum": 1}}}


def _retry_later(description: str, example: str) -> dict[str, Any]:
    return {**_error(description, example), "headers": _RETRY_AFTER}


def _date_param(name: str, description: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


def _optional(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_WINDOW = [
    _date_param("date_from", "Start of time frame. Datetime in ISO 8601 format.",
                "2024-05-01T00:00:00Z"),
    _date_param("date_to", "End of time frame. Datetime in ISO 8601 format, inclusive "
                "to the end of its stated precision.", "2024-05-31T23:59:59Z"),
    _optional("type", "Only views of this kind of video.",
              {"type": "string", "enum": list(VIDEO_TYPES)}),
]
_ID = _optional("id", "Only views of this video id.",
                {"type": "string", "minLength": 1, "maxLength": MAX_VIDEO_ID})
_HOST = _optional("host", "Only views from pages on this host.",
                  {"type": "string", "minLength": 1, "maxLength": MAX_HOST})
_COUNTRY = _optional("country", "Only views from this country (ISO 3166-1 alpha-2).",
                     {"type": "string", "pattern": "^[A-Za-z]{2}$"})
_EVENT = _optional("event", "Count this event instead of watch (a view).",
                   {"type": "string", "enum": list(EVENTS)})
# Every endpoint takes these (extensions beside Gcore's own parameters of countries, hosts
# and popular); any parameter an endpoint does not list is a 400 naming it.
_FILTERS = [*_WINDOW, _ID, _COUNTRY, _HOST, _EVENT]


_MAX_ROWS = Settings().query_max_rows


def _operation(operation_id: str, summary: str, description: str,
               parameters: list[dict[str, Any]], schema: str, narrow: str) -> dict[str, Any]:
    return {"get": {
        "tags": ["Statistics"],
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
            "400": _error("Bad Request: a parameter is bad, or is not one this endpoint "
                          "takes; the errors name each", "date_from: query param is not set"),
            "401": _error("Unauthorized", "authorization: a valid 'apikey <token>' is required"),
            "429": _retry_later(
                "Too Many Requests: the client's queries past QUERY_CLIENT_CONCURRENCY wait in a "
                "queue of QUERY_QUEUE_DEPTH for at most QUERY_QUEUE_WAIT_MS; past the queue or "
                "the wait, this. The error names the limit.",
                "too many queries at once for this client: no turn came within "
                "QUERY_QUEUE_WAIT_MS = 1000; QUERY_CLIENT_CONCURRENCY = 2 run at once"),
            "422": _error(
                f"The answer would have more rows than the row cap (QUERY_MAX_ROWS, default "
                f"{_MAX_ROWS}); the error says how to ask for fewer",
                f"the answer would have more than {_MAX_ROWS} rows; narrow the request: "
                + narrow),
            "500": _error("Internal Server Error", "internal server error"),
            "503": _retry_later(
                "Service Unavailable: the query exceeded an engine limit (QUERY_MAX_EXECUTION_MS "
                "or QUERY_MAX_MEMORY_MB), which the error names; a narrower window or more "
                "filters cost less.",
                "the query exceeded its engine limit QUERY_MAX_EXECUTION_MS = 30000 ms "
                "(TIMEOUT_EXCEEDED): narrow the window or the filters"),
        },
    }}


def _rows(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"data": {"type": "array", "items": {
        "type": "object", "required": required, "properties": properties}}}}


def _ranked(operation_id: str, summary: str, ranked: Ranked, schema: str) -> dict[str, Any]:
    unknown = '"unknown"' if ranked.field in ("browser", "os") else '""'
    return _operation(
        operation_id, summary + " in built-in player",
        f"Views per {ranked.row_name}, most first; what the collector could not tell, and "
        f"views stored before it was collected, count under {unknown}. " + _PLAYER_ONLY,
        [*_FILTERS, _optional("limit", "How many rows at most, most viewed first; without "
                              "it, every one up to the row cap.",
                              {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})],
        schema, ranked.narrow)


_VIEWS_DESCRIPTION = (
    "Views per UTC day (or hour, `granularity=1h`) and type, sorted by date, then type, then "
    "the group fields (host, country, event, id, browser, os, platform). `event` counts that "
    "event instead of watch; `group` (a comma list, or repeated) splits the rows and adds "
    "each field to them; ip is not stored and is a 400. A partial first or last day "
    "counts only the part inside the window. " + _PLAYER_ONLY)

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "viewstats - Streaming statistics API", "version": "1.0.0"},
    "security": [{"APIKey": []}],
    "paths": {
        "/streaming/statistics/countries": _operation(
            "getCountries", "Get views by countries in built-in player",
            "Aggregates the number of views grouping them by country in the built-in player. "
            "Country data: IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0.",
            _FILTERS, "countries", COUNTRIES_NARROW),
        "/streaming/statistics/views": _operation(
            "getViews", "Get the number of views in the built-in player", _VIEWS_DESCRIPTION,
            [*_FILTERS,
             {**_optional("group", "Split the rows by these fields.",
                          {"type": "array", "items": {"type": "string",
                                                      "enum": list(GROUP_FIELDS)}}),
              "style": "form", "explode": True},
             _optional("granularity", "Rows per UTC day (1d, the default) or hour (1h).",
                       {"type": "string", "enum": list(GRANULARITIES), "default": "1d"})],
            "views", VIEWS_NARROW),
        "/streaming/statistics/hosts": _operation(
            "getViewsByHostname", "Get views by embedding host in built-in player",
            "Views per host of the page the player was embedded in, most first; views "
            "without one (the player page opened by itself) count under the host \"\". "
            + _PLAYER_ONLY,
            [*_FILTERS, _optional("limit", "How many hosts at most, most viewed first; without "
                                 "it, every host up to the row cap.",
                                 {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})],
            "hosts", HOSTS.narrow),
        "/streaming/statistics/popular": _operation(
            "getPopularVideos", "Get the most viewed videos in built-in player",
            "Views per video id, most viewed first. " + _PLAYER_ONLY,
            [*_FILTERS, _optional("limit", "How many videos at most.",
                                 {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                  "default": DEFAULT_LIMIT})],
            "popular", POPULAR.narrow),
        "/streaming/statistics/uniqs": _operation(
            "getUniqueViewers", "Get unique viewers in the built-in player",
            "The number of distinct viewers (`unique_ips`) among the events counted: every "
            "event unless `event` names one. A viewer is a keyed hash of its IP; no IP is "
            "stored, so `group=ip` is a 400. With `group=date` a row per UTC day; without it "
            "the rows count the whole window and `date` is its first UTC day. Events stored "
            "before viewers were keyed are left out. " + _PLAYER_ONLY,
            [*_FILTERS,
             {**_optional("group", "Split the rows by these fields.",
                          {"type": "array", "items": {"type": "string",
                                                      "enum": list(UNIQS_GROUPS)}}),
              "style": "form", "explode": True}],
            "uniqs", UNIQS_NARROW),
        **{f"/streaming/statistics/{path}": _ranked(operation_id, summary, ranked, schema)
           for path, operation_id, summary, ranked, schema in (
               ("browsers", "getViewsByBrowsers", "Get views by browsers", BROWSERS,
                "browsers"),
               ("systems", "getViewsByOperatingSystem", "Get views by operating systems",
                SYSTEMS, "systems"),
               ("regions", "getViewsByRegion", "Get views by regions", REGIONS, "regions"),
               ("embeds", "getViewsByReferer", "Get views by embedding pages", EMBEDS,
                "embeds"))},
    },
    "components": {
        "schemas": {
            "countries": _rows(["views", "country", "country_name"], {
                "views": {"type": "integer"}, "country": {"type": "string"},
                "country_name": {"type": "string"}}),
            "views": _rows(["views", "date", "type"], {
                "views": {"type": "integer"},
                "date": {"type": "string", "description": "2024-05-01, or 2024-05-01T13:00:00Z "
                                                          "with granularity=1h"},
                "type": {"type": "string", "enum": list(VIDEO_TYPES)},
                "host": {"type": "string"}, "country": {"type": "string"},
                "event": {"type": "string", "enum": list(EVENTS)}, "id": {"type": "string"}}),
            "hosts": _rows(["views", "host"], {"views": {"type": "integer"},
                                               "host": {"type": "string"}}),
            "popular": _rows(["views", "id"], {"views": {"type": "integer"},
                                               "id": {"type": "string"}}),
            "uniqs": _rows(["unique_ips", "date"], {
                "unique_ips": {"type": "integer"},
                "date": {"type": "string", "description": "2024-05-01"},
                **{name: {"type": "string"} for name in GROUP_FIELDS}}),
            "browsers": _rows(["views", "browser"], {"views": {"type": "integer"},
                                                     "browser": {"type": "string"}}),
            "systems": _rows(["views", "os"], {"views": {"type": "integer"},
                                               "os": {"type": "string"}}),
            "regions": _rows(["views", "region", "region_name"], {
                "views": {"type": "integer"},
                "region": {"type": "string", "description": "ISO 3166-2, e.g. US-CA; \"\" "
                                                            "when unknown"},
                "region_name": {"type": "string"}}),
            "embeds": _rows(["views", "embed_url"], {"views": {"type": "integer"},
                                                     "embed_url": {"type": "string"}}),
            "error_common": {"type": "object", "required": ["data", "errors"], "properties": {
                "data": {"type": "array", "items": {"type": "string"}},
                "errors": {"type": "array", "items": {"type": "string"}}}},
        },
        "securitySchemes": {"APIKey": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "Include the word `apikey`, a single space and then your token. "
                           "Example: `apikey 1234$abcdef`"}},
    },
}
