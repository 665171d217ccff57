from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.support.api import COUNTRIES, auth_header, countries, query_client, watch
from tests.support.database import fresh_client_id
from tests.support.processes import serving, viewstats
from viewstats.core import keys as keys_module
from viewstats.core.events import insert_events
from viewstats.core.keys import create_key, revoke_key
from viewstats.core.storage import Storage

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


def test_a_changed_key_file_is_read_once_the_reload_interval_passes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """architecture §7's "within 2 s", shown on a fake clock: the file is checked every 0.5 s."""
    now = [1000.0]
    monkeypatch.setattr("viewstats.core.keys.time", SimpleNamespace(monotonic=lambda: now[0]))
    path = tmp_path / "keys"
    store = keys_module.KeyStore(path)
    _, token = create_key(path, 5)
    now[0] += keys_module.RELOAD_INTERVAL_S - 0.01
    assert store.authenticate(token) is None  # not looked at yet
    now[0] += 0.01
    assert store.authenticate(token) == 5
    assert keys_module.RELOAD_INTERVAL_S <= 2.0


@pytest.mark.chdb
@pytest.mark.parametrize("broken", [b"{}", b"[]", b'{"keys": [', b"\xff\xfe\x00"])
def test_a_broken_key_file_is_401_for_every_key_never_500(
        storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        broken: bytes) -> None:
    now = [1000.0]
    monkeypatch.setattr("viewstats.core.keys.time", SimpleNamespace(monotonic=lambda: now[0]))
    keys = tmp_path / "keys"
    _, token = create_key(keys, fresh_client_id())
    headers = {"Authorization": f"apikey {token}"}
    client = query_client(storage, keys)
    assert client.get(COUNTRIES, params=WINDOW, headers=headers).status_code == 200
    good = keys.read_bytes()
    keys.write_bytes(broken)
    now[0] += keys_module.RELOAD_INTERVAL_S
    response = client.get(COUNTRIES, params=WINDOW, headers=headers)
    assert response.status_code == 401
    assert response.json()["data"] == [] and response.json()["errors"]
    assert response.headers["www-authenticate"] == "apikey"
    keys.write_bytes(good)
    now[0] += keys_module.RELOAD_INTERVAL_S
    assert client.get(COUNTRIES, params=WINDOW, headers=headers).status_code == 200


@pytest.mark.chdb
@pytest.mark.slow
def test_keys_made_and_revoked_while_the_server_runs_take_effect(tmp_path: Path) -> None:
    """The real processes: `keys create`/`revoke` against a running `viewstats run`."""
    data = tmp_path / "data"
    with serving("run", data) as (base, _):
        created = viewstats("keys", "create", "--client-id", "17", "--data-dir", str(data))
        token = created.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"apikey {token}"}
        url = base + COUNTRIES
        assert _status_becomes(url, headers, 200)
        viewstats("keys", "revoke", token.split("$")[0], "--data-dir", str(data))
        assert _status_becomes(url, headers, 401)


def _status_becomes(url: str, headers: dict[str, str], status: int) -> bool:
    # Generous: the bound under test is the reload interval above, not this machine's speed.
    for _ in range(200):
        if httpx.get(url, params=WINDOW, headers=headers).status_code == status:
            return True
        time.sleep(0.05)
    return False
