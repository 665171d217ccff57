from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ingest.events import insert_events
from tests.support.api import COUNTRIES, auth_header, countries, query_client, watch
from tests.support.database import fresh_client_id
from tests.support.processes import serving, viewstats
from viewstats.keys import create_key, revoke_key
from viewstats.storage import Storage

WINDOW = {"date_from": "2024-05-01", "date_to": "2024-05-01"}
NOON = 1_714_564_800_000  # 2024-05-01T12:00:00Z


@pytest.mark.chdb
@pytest.mark.parametrize("header", [
    None, "", "apikey", "apikey ", "Bearer {token}", "Basic {token}", "apikey{token}",
    "apikey 999$deadbeef", "apikey {key_id}$wrong", "apikey {key_id}", "apikey $",
    "apikey {token}x",
])
def test_bad_credentials_are_401(storage: Storage, tmp_path: Path, header: str | None) -> None:
    keys = tmp_path / "keys"
    key, token = create_key(keys, fresh_client_id())
    headers = {} if header is None else {
        "Authorization": header.format(token=token, key_id=key.key_id)}
    response = query_client(storage, keys).get(COUNTRIES, params=WINDOW, headers=headers)
    assert response.status_code == 401
    assert response.json()["data"] == [] and response.json()["errors"]
    assert response.headers["www-authenticate"] == "apikey"


@pytest.mark.chdb
def test_scheme_is_case_insensitive_and_revoked_keys_stop_working(
        storage: Storage, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key, token = create_key(keys, fresh_client_id())
    revoke_key(keys, key.key_id)
    _, other = create_key(keys, key.client_id)
    client = query_client(storage, keys)
    assert client.get(COUNTRIES, params=WINDOW,
                      headers={"Authorization": f"APIKEY {other}"}).status_code == 200
    assert client.get(COUNTRIES, params=WINDOW,
                      headers={"Authorization": f"apikey {token}"}).status_code == 401


@pytest.mark.chdb
def test_two_clients_never_see_each_others_views(storage: Storage, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first, second = fresh_client_id(), fresh_client_id()
    insert_events(storage, [watch(first, NOON, "AU", 1), watch(first, NOON, "AU", 2),
                            watch(second, NOON, "US", 3)])
    headers = {c: auth_header(keys, c) for c in (first, second)}
    client = query_client(storage, keys)
    assert countries(client, headers[first], **WINDOW) == {"AU": 2}
    assert countries(client, headers[second], **WINDOW) == {"US": 1}


@pytest.mark.chdb
@pytest.mark.slow
def test_keys_made_and_revoked_while_the_server_runs_apply_within_2_s(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving("run", data) as (base, _):
        created = viewstats("keys", "create", "--client-id", "17", "--data-dir", str(data))
        made_at = time.monotonic()
        token = created.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"apikey {token}"}
        url = base + COUNTRIES
        while (status := httpx.get(url, params=WINDOW, headers=headers).status_code) == 401:
            assert time.monotonic() - made_at < 2.0, "new key not honoured within 2 s"
            time.sleep(0.05)
        assert status == 200
        viewstats("keys", "revoke", token.split("$")[0], "--data-dir", str(data))
        revoked_at = time.monotonic()
        while httpx.get(url, params=WINDOW, headers=headers).status_code == 200:
            assert time.monotonic() - revoked_at < 2.0, "revoked key still honoured after 2 s"
            time.sleep(0.05)
