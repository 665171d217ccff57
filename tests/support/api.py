"""The query API in-process over the test database, and helpers to call it."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from viewstats.core.events import PlayerEvent
from viewstats.core.keys import KeyStore, create_key
from viewstats.core.settings import Settings
from viewstats.core.storage import Storage
from viewstats.query_api.app import query_routes
from viewstats.server import build_app

COUNTRIES = "/streaming/statistics/countries"


def query_client(storage: Storage, keys_path: Path, settings: Settings | None = None
                 ) -> TestClient:
    return TestClient(build_app(query_routes(storage, KeyStore(keys_path), settings=settings)))


def auth_header(keys_path: Path, client_id: int) -> dict[str, str]:
    _, token = create_key(keys_path, client_id)
    return {"Authorization": f"apikey {token}"}


def watch(client_id: int, ts_ms: int, country: str, view: int, *,
          event: str = "watch", type_: str = "vod") -> PlayerEvent:
    return PlayerEvent(client_id, ts_ms, event, type_, "v-1",
                       f"00000000-0000-4000-8000-{view:012x}", country, "example.com")


def countries(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, int]:
    response = client.get(COUNTRIES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {row["country"]: row["views"] for row in response.json()["data"]}
