"""The OpenAPI description served at `/openapi.json`: Gcore's countries contract
(its facts: `tests/fixtures/gcore_countries_contract.yaml`) plus the additive 401 response
and `type` filter."""

from __future__ import annotations

from typing import Any

from viewstats.core.events import VIDEO_TYPES

_ERROR = {"$ref": "#/components/schemas/error_common"}


def _error(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": _ERROR, "example": {"data": [], "errors": [example]}}}}


def _date_param(name: str, description: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "viewstats - Streaming statistics API", "version": "1.0.0"},
    "security": [{"APIKey": []}],
    "paths": {"/streaming/statistics/countries": {"get": {
        "tags": ["Statistics"],
        "summary": "Get views by countries in built-in player",
        "description": "Aggregates the number of views grouping them by country in the "
                       "built-in player. Country data: IP geolocation by DB-IP "
                       "(https://db-ip.com), CC BY 4.0.",
        "operationId": "getCountries",
        "parameters": [
            _date_param("date_from", "Start of time frame. Datetime in ISO 8601 format.",
                        "2024-05-01T00:00:00Z"),
            _date_param("date_to", "End of time frame. Datetime in ISO 8601 format, inclusive "
                        "to the end of its stated precision.", "2024-05-31T23:59:59Z"),
            {"name": "type", "in": "query", "required": False,
             "description": "Only views of this kind of video.",
             "schema": {"type": "string", "enum": list(VIDEO_TYPES)}},
        ],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/countries"}}}},
            "400": _error("Bad Request", "date_from: query param is not set"),
            "401": _error("Unauthorized", "authorization: a valid 'apikey <token>' is required"),
            "500": _error("Internal Server Error", "internal server error"),
        },
    }}},
    "components": {
        "schemas": {
            "countries": {"type": "object", "properties": {"data": {
                "type": "array", "items": {
                    "type": "object", "required": ["views", "country", "country_name"],
                    "properties": {"views": {"type": "integer"},
                                   "country": {"type": "string"},
                                   "country_name": {"type": "string"}}}}}},
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
