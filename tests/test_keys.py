from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from tests.support.processes import viewstats
from viewstats.core.keys import (
    RELOAD_INTERVAL_S,
    KeyFileError,
    KeyStore,
    UnknownKeyError,
    create_key,
    read_keys,
    revoke_key,
)


def test_the_file_holds_a_hash_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    key, token = create_key(path, 17)
    key_id, secret = token.split("$")
    assert key_id == str(key.key_id) == "1"
    assert secret not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert KeyStore(path).authenticate(token) == 17
    # One hex digit changed: "0" for any other, since a secret ends in "0" one time in 16.
    other = "1" if secret.endswith("0") else "0"
    assert KeyStore(path).authenticate(f"{key_id}${secret[:-1]}{other}") is None


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
    with pytest.raises(UnknownKeyError):
        revoke_key(path, 99)


Clock = Callable[[], None]


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fake monotonic clock; each call moves it on by one reload interval."""
    now = [1000.0]
    monkeypatch.setattr("viewstats.core.keys.time", SimpleNamespace(monotonic=lambda: now[0]))

    def advance() -> None:
        now[0] += RELOAD_INTERVAL_S

    return advance


def _edit_first(good: bytes, change: Callable[[dict[str, object]], object]) -> bytes:
    doc = orjson.loads(good)
    change(doc["keys"][0])
    return orjson.dumps(doc)


# Each turns the bytes of a good two-key file into a bad one.
CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty object": lambda good: b"{}",
    "array": lambda good: b"[]",
    "garbage": lambda good: b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage",
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "wrong type": lambda good: _edit_first(good, lambda e: e.update(client_id="3")),
    "missing field": lambda good: _edit_first(good, lambda e: e.pop("created_at")),
}


def _two_keys(path: Path) -> tuple[str, str]:
    return create_key(path, 3)[1], create_key(path, 4)[1]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "viewstats.core.keys" and r.levelno == logging.ERROR]


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_bad_file_accepts_no_key_until_a_good_one_is_back(
        tmp_path: Path, tick: Clock, caplog: pytest.LogCaptureFixture, corruption: str) -> None:
    path = tmp_path / "api_keys"
    first, second = _two_keys(path)
    store = KeyStore(path)
    assert (store.authenticate(first), store.authenticate(second)) == (3, 4)
    good = path.read_bytes()
    path.write_bytes(CORRUPTIONS[corruption](good))
    caplog.clear()
    for checks in (1, 2, 3):
        tick()
        assert store.authenticate(first) is None
        assert store.authenticate(second) is None  # the same check: no second look, no log
        errors = _errors(caplog)
        assert len(errors) == checks, errors
        assert str(path) in errors[-1] and "accepting no API key" in errors[-1]
    path.write_bytes(good)
    tick()
    assert (store.authenticate(first), store.authenticate(second)) == (3, 4)
    caplog.clear()
    tick()
    assert store.authenticate(first) == 3
    assert _errors(caplog) == []


def test_a_server_started_on_a_bad_file_accepts_no_key(
        tmp_path: Path, tick: Clock, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "api_keys"
    first, _ = _two_keys(path)
    good = path.read_bytes()
    path.write_bytes(b"{}")
    store = KeyStore(path)
    assert store.authenticate(first) is None
    assert len(_errors(caplog)) == 1
    path.write_bytes(good)
    tick()
    assert store.authenticate(first) == 3


def test_a_key_revoked_just_before_the_file_broke_stays_revoked(tmp_path: Path,
                                                                 tick: Clock) -> None:
    """The issue's case: the store never saw the version of the file that revoked the key."""
    path = tmp_path / "api_keys"
    revoked, kept = _two_keys(path)
    store = KeyStore(path)
    assert (store.authenticate(revoked), store.authenticate(kept)) == (3, 4)
    revoke_key(path, 1)
    path.write_bytes(path.read_bytes()[:-10])  # broken before the next reload check
    tick()
    assert store.authenticate(revoked) is None
    assert store.authenticate(kept) is None


def test_a_revocation_the_store_saw_survives_a_broken_file(tmp_path: Path,
                                                            tick: Clock) -> None:
    path = tmp_path / "api_keys"
    revoked, kept = _two_keys(path)
    store = KeyStore(path)
    revoke_key(path, 1)
    tick()
    assert (store.authenticate(revoked), store.authenticate(kept)) == (None, 4)
    good = path.read_bytes()
    path.write_bytes(b"{not json")
    tick()
    assert (store.authenticate(revoked), store.authenticate(kept)) == (None, None)
    path.write_bytes(good)
    tick()
    assert (store.authenticate(revoked), store.authenticate(kept)) == (None, 4)


def test_a_missing_file_is_no_keys_and_no_error(tmp_path: Path, tick: Clock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "api_keys"
    store = KeyStore(path)
    assert read_keys(path) == []
    assert store.authenticate("1$" + "0" * 64) is None
    _, token = create_key(path, 8)
    path.unlink()
    tick()
    assert store.authenticate(token) is None
    assert _errors(caplog) == []


def _entry(**changes: object) -> dict[str, object]:
    return {"key_id": 1, "client_id": 3, "secret_sha256": "ab" * 32,
            "created_at": "2024-05-01T00:00:00+00:00", "revoked_at": None, **changes}


KEY_ID_RANGE = "must be an integer from 0 to 999999999999999999"
CLIENT_ID_RANGE = "must be an integer from 0 to 4294967295"


@pytest.mark.parametrize(("doc", "fault"), [
    ({}, 'must be a JSON object {"keys": [...]}'),
    ([], 'must be a JSON object {"keys": [...]}'),
    ({"keys": {}}, 'must be a JSON object {"keys": [...]}'),
    ({"keys": [], "version": 2}, "unknown member version next to keys"),
    ({"keys": [7]}, "keys[0]: must be a JSON object"),
    ({"keys": [{k: v for k, v in _entry().items() if k != "revoked_at"}]},
     "keys[0]: missing revoked_at"),
    ({"keys": [_entry(comment="x")]}, "keys[0]: unknown field comment"),
    ({"keys": [_entry(key_id="1")]}, f"keys[0]: key_id: {KEY_ID_RANGE}"),
    ({"keys": [_entry(key_id=True)]}, f"keys[0]: key_id: {KEY_ID_RANGE}"),
    ({"keys": [_entry(key_id=-1)]}, f"keys[0]: key_id: {KEY_ID_RANGE}"),
    ({"keys": [_entry(key_id=10**18)]}, f"keys[0]: key_id: {KEY_ID_RANGE}"),
    ({"keys": [_entry(client_id=3.0)]}, f"keys[0]: client_id: {CLIENT_ID_RANGE}"),
    ({"keys": [_entry(client_id=2**32)]}, f"keys[0]: client_id: {CLIENT_ID_RANGE}"),
    ({"keys": [_entry(secret_sha256="é" * 64)]},
     "keys[0]: secret_sha256: must be 64 lower-case hex digits"),
    ({"keys": [_entry(secret_sha256="AB" * 32)]},
     "keys[0]: secret_sha256: must be 64 lower-case hex digits"),
    ({"keys": [_entry(created_at=None)]}, "keys[0]: created_at: must be a string"),
    ({"keys": [_entry(revoked_at=0)]}, "keys[0]: revoked_at: must be a string or null"),
    ({"keys": [_entry(revoked_at="2024-06-01T00:00:00+00:00"), _entry()]},
     "keys[1]: key_id 1 appears twice"),
])
def test_read_keys_names_the_file_and_the_fault(tmp_path: Path, doc: object,
                                                fault: str) -> None:
    path = tmp_path / "api_keys"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(KeyFileError) as caught:
        read_keys(path)
    assert str(caught.value) == f"API key file {path}: {fault}"


def test_read_keys_names_json_and_read_errors(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    path.write_bytes(b'{"keys": [')
    with pytest.raises(KeyFileError, match=r"api_keys: not valid JSON"):
        read_keys(path)
    path.unlink()
    path.mkdir()  # exists but cannot be read as a file
    with pytest.raises(KeyFileError, match=r"api_keys: cannot be read"):
        read_keys(path)


def test_a_good_file_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    path.write_bytes(orjson.dumps({"keys": [
        _entry(), _entry(key_id=10**18 - 1, client_id=2**32 - 1,
                         revoked_at="2024-06-01T00:00:00+00:00")]}))
    assert [(k.key_id, k.client_id, k.revoked_at) for k in read_keys(path)] == [
        (1, 3, None), (10**18 - 1, 2**32 - 1, "2024-06-01T00:00:00+00:00")]


def test_writers_refuse_a_bad_file_and_leave_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "api_keys"
    create_key(path, 3)
    bad = path.read_bytes()[:-5]
    path.write_bytes(bad)
    with pytest.raises(KeyFileError):
        create_key(path, 4)
    with pytest.raises(KeyFileError):
        revoke_key(path, 1)
    assert path.read_bytes() == bad


def test_cli_on_a_bad_file_says_so_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path
    path = data / "api_keys"
    create_key(path, 3)
    path.write_bytes(b"{}")
    for command in (["list"], ["create", "--client-id", "4"], ["revoke", "1"]):
        result = viewstats("keys", *command, "--data-dir", str(data), check=False)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"viewstats: error: API key file {path}: must be"), \
            result.stderr
        assert "Traceback" not in result.stderr
        assert path.read_bytes() == b"{}"


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
