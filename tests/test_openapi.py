"""The served `/openapi.json` matches Gcore's contract, documents every statistics endpoint,
and no request generated from it gets a 5xx or an answer outside the documented shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.api import auth_header, watch
from tests.support.database import fresh_client_id
from viewstats.core.events import insert_events
from viewstats.core.keys import KeyStore
from viewstats.core.storage import Storage
from viewstats.query_api.app import query_routes
from viewstats.query_api.openapi import OPENAPI
from viewstats.server import build_app

pytestmark = pytest.mark.chdb
# Gcore's contract, reduced to the facts that bind us, kept with the tests.
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "gcore_countries_contract.yaml"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           _session_storage: Storage) -> tuple[Starlette, dict[str, str]]:
    keys = tmp_path_factory.mktemp("openapi") / "api_keys"
    client_id = fresh_client_id()
    headers = auth_header(keys, client_id)
    insert_events(_session_storage, [watch(client_id, 1_714_564_800_000, "AU", 1)])
    return build_app(query_routes(_session_storage, KeyStore(keys))), headers


@pytest.mark.parametrize("path", [
    "/streaming/statistics/countries", "/streaming/statistics/views",
    "/streaming/statistics/hosts", "/streaming/statistics/popular"])
def test_no_generated_request_is_a_server_error(
        served: tuple[Starlette, dict[str, str]], storage: Storage, path: str) -> None:
    del storage  # requested for the chdb marker check
    app, headers = served
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path]["GET"]

    @given(case=operation.as_strategy())
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        # Dates are plain strings in the contract, so a schema-valid value can still be a 400:
        # every check but "positive data is accepted".
        case.validate_response(response, checks=[
            checks.not_a_server_error, checks.status_code_conformance,
            checks.content_type_conformance, checks.response_schema_conformance,
            checks.negative_data_rejection])
        assert response.status_code in (200, 400), response.text

    check()


def test_the_reference_contract_is_kept() -> None:
    """Ours may add (401, `type`) but must keep every part of Gcore's description."""
    reference = yaml.safe_load(REFERENCE.read_text())
    theirs = reference["paths"]["/streaming/statistics/countries"]["get"]
    ours = OPENAPI["paths"]["/streaming/statistics/countries"]["get"]
    assert ours["operationId"] == theirs["operationId"]
    for param in theirs["parameters"]:
        mine = next(p for p in ours["parameters"] if p["name"] == param["name"])
        assert (mine["in"], mine["required"], mine["schema"]) == (
            param["in"], param["required"], param["schema"])
    assert [p["name"] for p in ours["parameters"] if p["required"]] == [
        p["name"] for p in theirs["parameters"]]
    assert set(theirs["responses"]) <= set(ours["responses"])
    for name in ("countries", "error_common"):
        assert OPENAPI["components"]["schemas"][name] == reference["components"]["schemas"][name]
    for status, response in (("400", "error_bad_request"), ("500", "error_internal_server")):
        shape = reference["components"]["responses"][response]["content"]["application/json"]
        assert ours["responses"][status]["content"]["application/json"]["schema"] == \
            shape["schema"]
    scheme = reference["components"]["securitySchemes"]["APIKey"]
    assert {k: OPENAPI["components"]["securitySchemes"]["APIKey"][k] for k in
            ("type", "in", "name")} == {k: scheme[k] for k in ("type", "in", "name")}
    assert OPENAPI["security"] == reference["security"]


def test_every_statistics_endpoint_documents_its_budget_refusals() -> None:
    """429 (past the client's queue) and 503 (past an engine limit) say when to retry."""
    for path in OPENAPI["paths"].values():
        responses = path["get"]["responses"]
        for status in ("429", "503"):
            assert "Retry-After" in responses[status]["headers"], status
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/error_common"}


def test_every_served_statistics_endpoint_is_documented(
        served: tuple[Starlette, dict[str, str]]) -> None:
    app, _ = served
    routes = {getattr(route, "path", "") for route in app.routes}
    served_paths = {path for path in routes if path.startswith("/streaming/")}
    assert served_paths == set(OPENAPI["paths"])
    assert len(served_paths) == 9


@pytest.mark.parametrize("path", list(OPENAPI["paths"]))
def test_each_endpoint_takes_exactly_the_parameters_it_documents(
        served: tuple[Starlette, dict[str, str]], path: str) -> None:
    app, headers = served
    documented = [param["name"] for param in OPENAPI["paths"][path]["get"]["parameters"]]
    query = "&".join(f"{name}=x" for name in [*documented, "undocumented"])
    errors = TestClient(app).get(f"{path}?{query}", headers=headers).json()["errors"]
    unknown = [error.split(":")[0] for error in errors if "unknown query param" in error]
    assert unknown == ["undocumented"], errors
