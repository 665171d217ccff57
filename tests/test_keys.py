from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.processes import viewstats
from viewstats.keys import KeyStore, create_key, read_keys, revoke_key


def test_the_file_holds_a_hash_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    key, token = create_key(path, 17)
    key_id, secret = token.split("$")
    assert key_id == str(key.key_id) == "1"
    assert secret not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert KeyStore(path).authenticate(token) == 17
    assert KeyStore(path).authenticate(f"{key_id}${secret[:-1]}0") is None


def test_concurrent_creates_lose_no_key(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda c: create_key(path, c)[1], range(1, 41)))
    store = KeyStore(path)
    assert sorted(store.authenticate(t) or 0 for t in tokens) == list(range(1, 41))
    assert sorted(k.key_id for k in read_keys(path)) == list(range(1, 41))


def test_revoke_keeps_the_record_and_unknown_ids_fail(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    key, token = create_key(path, 5)
    assert revoke_key(path, key.key_id).revoked_at is not None
    assert KeyStore(path).authenticate(token) is None
    assert read_keys(path)[0].revoked_at is not None
    with pytest.raises(KeyError):
        revoke_key(path, 99)


def test_a_broken_file_keeps_the_keys_already_loaded(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "api_keys"
    _, token = create_key(path, 3)
    store = KeyStore(path)
    path.write_text("{not json")
    store._checked = 0.0  # the next call re-reads the file
    assert store.authenticate(token) == 3
    assert "cannot read API keys" in caplog.text


def test_cli_prints_the_token_alone_on_its_last_line(tmp_path: Path) -> None:
    data = str(tmp_path)
    created = viewstats("keys", "create", "--client-id", "42", "--data-dir", data)
    token = created.stdout.splitlines()[-1]
    assert token.startswith("1$") and len(token) == 66
    listing = viewstats("keys", "list", "--data-dir", data).stdout
    assert "42" in listing and token.split("$")[1] not in listing
    assert "revoked key 1" in viewstats("keys", "revoke", "1", "--data-dir", data).stdout
    missing = viewstats("keys", "revoke", "7", "--data-dir", data, check=False)
    assert missing.returncode == 2 and "no key with id 7" in missing.stderr
    bad = viewstats("keys", "create", "--client-id", "-1", "--data-dir", data, check=False)
    assert bad.returncode == 2 and "client id" in bad.stderr
