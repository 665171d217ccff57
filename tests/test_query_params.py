"""Every bad input to the countries endpoint: a 400 in Gcore's error shape naming the parameter;
and a parameter any statistics endpoint does not take: a 400 naming it, never ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.api import COUNTRIES, auth_header, query_client
from tests.support.database import fresh_client_id
from viewstats.core.storage import Storage

pytestmark = pytest.mark.chdb

GOOD = "2024-05-01T00:00:00Z"
VIEWS, HOSTS, POPULAR = (f"/streaming/statistics/{name}" for name in ("views", "hosts", "popular"))


@pytest.fixture
def client(storage: Storage, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    headers = auth_header(tmp_path / "keys", fresh_client_id())
    return query_client(storage, tmp_path / "keys"), headers


@pytest.mark.parametrize(("query", "error"), [
    ("", "date_from: query param is not set"),
    (f"date_from={GOOD}", "date_to: query param is not set"),
    (f"date_to={GOOD}", "date_from: query param is not set"),
    (f"date_from=&date_to={GOOD}", "date_from: query param is empty"),
    (f"date_from={GOOD}&date_to=", "date_to: query param is empty"),
    (f"date_from={GOOD}&date_from={GOOD}&date_to={GOOD}",
     "date_from: query param is set more than once"),
    (f"date_from=2024-02-30&date_to={GOOD}", "date_from: not a valid date or time"),
    (f"date_from=2024-05-01T25:00:00Z&date_to={GOOD}", "date_from: not a valid date or time"),
    (f"date_from=May%201&date_to={GOOD}", "date_from: invalid ISO 8601 date-time"),
    (f"date_from={GOOD}&date_to=2024-04-30", "date_from: must not be after date_to"),
    ("date_from=0001-01-01&date_to=2024-06-01", "date_from: must be between 1970-01-01"),
    (f"date_from={GOOD}&date_to=9999-12-31", "date_to: must be between 1970-01-01"),
    (f"date_from={'9' * 60_000}&date_to={GOOD}", "date_from: value is too long"),
    (f"date_from={GOOD}&date_to={GOOD}&type=vod2", "type: must be one of vod, live, playlist"),
    (f"date_from={GOOD}&date_to={GOOD}&type=", "type: query param is empty"),
    (f"date_from={GOOD}&date_to={GOOD}&type=vod&type=live",
     "type: query param is set more than once"),
    ("date_from=%00&date_to=%ff", "date_from: invalid ISO 8601 date-time"),
    # Full-width and Arabic-Indic digits, which int() would read as 2024 and 01.
    (f"date_from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%94-05-01&date_to={GOOD}",
     "date_from: invalid ISO 8601 date-time"),
    (f"date_from={GOOD}&date_to=2024-05-%D9%A0%D9%A1", "date_to: invalid ISO 8601 date-time"),
])
def test_bad_input_is_a_400_naming_the_parameter(
        client: tuple[TestClient, dict[str, str]], query: str, error: str) -> None:
    http, headers = client
    response = http.get(f"{COUNTRIES}?{query}", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] == []
    assert any(e.startswith(error) for e in body["errors"]), body


def test_both_dates_missing_names_both(client: tuple[TestClient, dict[str, str]]) -> None:
    http, headers = client
    assert http.get(COUNTRIES, headers=headers).json() == {"data": [], "errors": [
        "date_from: query param is not set", "date_to: query param is not set"]}


# Each endpoint's own parameters, beside the window, `type`, id, country, host and event, with
# a good value for each.
OWN = {COUNTRIES: {}, VIEWS: {"group": "host", "granularity": "1h"}, HOSTS: {"limit": "5"},
       POPULAR: {"limit": "5"}}
COMMON = {"date_from": GOOD, "date_to": GOOD, "type": "vod", "id": "v-1", "country": "AU",
          "host": "example.com", "event": "start"}


@pytest.mark.parametrize("path", list(OWN))
def test_every_endpoint_takes_the_filters_and_its_own_parameters(
        client: tuple[TestClient, dict[str, str]], path: str) -> None:
    http, headers = client
    response = http.get(path, headers=headers, params={**COMMON, **OWN[path]})
    assert (response.status_code, response.json()) == (200, {"data": []})


@pytest.mark.parametrize("path", list(OWN))
def test_a_parameter_an_endpoint_does_not_take_is_a_400_naming_each(
        client: tuple[TestClient, dict[str, str]], path: str) -> None:
    """Another endpoint's parameter (limit once made countries' answer no shorter), a
    misspelling, a case other than ours: each is named, beside the other problems."""
    http, headers = client
    others = [name for own in OWN.values() for name in own if name not in OWN[path]]
    query = (f"date_to={GOOD}&" + "&".join(f"{name}=1" for name in others)
             + "&contry=AU&Type=vod&contry=US")
    response = http.get(f"{path}?{query}", headers=headers)
    takes = ", ".join([*COMMON, *OWN[path]])
    assert (response.status_code, response.json()) == (400, {"data": [], "errors": [
        "date_from: query param is not set",
        *(f"{name}: unknown query param; this endpoint takes {takes}"
          for name in [*dict.fromkeys(others), "contry", "Type"])]})


def test_a_database_failure_is_a_500_without_the_cause(
        client: tuple[TestClient, dict[str, str]], storage: Storage,
        caplog: pytest.LogCaptureFixture) -> None:
    http, headers = client
    storage.command("RENAME TABLE views_by_country_daily TO views_by_country_daily_moved")
    try:
        response = http.get(COUNTRIES, headers=headers,
                            params={"date_from": GOOD, "date_to": "2024-05-03"})
    finally:
        storage.command("RENAME TABLE views_by_country_daily_moved TO views_by_country_daily")
    assert response.status_code == 500
    assert response.json() == {"data": [], "errors": ["internal server error"]}
    assert "views_by_country_daily" in caplog.text


def test_unknown_paths_and_methods_keep_the_error_shape(
        client: tuple[TestClient, dict[str, str]]) -> None:
    http, headers = client
    assert http.get("/nope").json() == {"data": [], "errors": ["Not Found"]}
    response = http.post(COUNTRIES, headers=headers)
    assert response.status_code == 405 and response.json()["data"] == []
