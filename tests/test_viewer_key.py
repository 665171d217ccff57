"""Viewer keys: a keyed hash of the viewer's address, and the secret file it is keyed with
(ingest/collector/viewer_key.py)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from viewstats.ingest.collector.viewer_key import (
    NO_VIEWER,
    ViewerKeyError,
    ViewerKeys,
    create_secret_file,
)

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


class _ZeroHash:
    """A SHA-256 state whose digest is all zeros."""

    def copy(self) -> _ZeroHash:
        return self

    def update(self, data: bytes) -> None:
        pass

    def digest(self) -> bytes:
        return bytes(32)


def _made(tmp_path: Path) -> Path:
    path = tmp_path / "viewer-key"
    assert create_secret_file(path)
    return path


def test_a_key_is_the_first_8_bytes_of_the_hmac() -> None:
    ip = IPv4Address("203.0.113.7")
    expected = int.from_bytes(hmac.new(SECRET, ip.packed, hashlib.sha256).digest()[:8], "big")
    assert ViewerKeys(SECRET).key(ip) == expected


def test_the_same_address_and_secret_give_the_same_key() -> None:
    keys = ViewerKeys(SECRET)
    for text in ("203.0.113.7", "2001:db8::1"):
        assert keys.key(ip_address(text)) == ViewerKeys(SECRET).key(ip_address(text))
    assert keys.key(ip_address("203.0.113.7")) != keys.key(ip_address("203.0.113.8"))


def test_another_secret_gives_other_keys() -> None:
    for text in ("203.0.113.7", "2001:db8::1"):
        assert ViewerKeys(SECRET).key(ip_address(text)) != ViewerKeys(OTHER).key(ip_address(text))


def test_an_ipv4_mapped_address_is_its_ipv4_address() -> None:
    keys = ViewerKeys(SECRET)
    assert keys.key(IPv6Address("::ffff:203.0.113.7")) == keys.key(IPv4Address("203.0.113.7"))
    # Not any IPv6 address ending in the same 4 bytes.
    assert keys.key(IPv6Address("::203.0.113.7")) != keys.key(IPv4Address("203.0.113.7"))


def test_no_address_is_no_viewer_and_an_address_never_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ViewerKeys(SECRET)
    assert keys.key(None) == NO_VIEWER == 0
    assert all(keys.key(IPv4Address(n)) > 0 for n in range(1000))
    # A hash whose first 8 bytes are zero: the key is 1, not "no viewer".
    monkeypatch.setattr(keys, "_outer", _ZeroHash())
    assert keys.key(IPv4Address("203.0.113.7")) == 1


def test_a_made_file_is_read_back(tmp_path: Path) -> None:
    path = _made(tmp_path)
    body = path.read_bytes()
    assert len(body) == 65 and body.endswith(b"\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ip = IPv4Address("203.0.113.7")
    written = ViewerKeys(bytes.fromhex(body[:64].decode()))
    assert ViewerKeys.from_file(path).key(ip) == written.key(ip)
    assert [p.name for p in tmp_path.iterdir()] == ["viewer-key"]  # no temporary file left


def test_making_never_replaces_a_file(tmp_path: Path) -> None:
    path = _made(tmp_path)
    before = path.read_bytes()
    assert not create_secret_file(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["viewer-key"]


def test_concurrent_makers_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "data" / "viewer-key"
    made: list[bool] = []
    secrets: list[bytes] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        made.append(create_secret_file(path))
        secrets.append(path.read_bytes())  # never a half-written file

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made.count(True) == 1
    assert len(set(secrets)) == 1 and len(secrets[0]) == 65


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    path = tmp_path / "viewer-key"
    with pytest.raises(ViewerKeyError, match=f"^viewer key file {path}: missing") as error:
        ViewerKeys.from_file(path)
    assert "chmod 600" in str(error.value) and "secrets.token_hex(32)" in str(error.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = _made(tmp_path)
    path.chmod(mode)
    with pytest.raises(ViewerKeyError, match=f"chmod 600 {path}$"):
        ViewerKeys.from_file(path)
    path.chmod(0o400)  # owner-only is enough, writable or not
    ViewerKeys.from_file(path)


@pytest.mark.parametrize("body", [b"", b"\n", b"ab" * 31 + b"\n", b"ab" * 33 + b"\n",
                                  b"AB" * 32 + b"\n", b"ab" * 32 + b"\n\n", b"zz" * 32,
                                  b"ab" * 32 + b" \n"])
def test_a_malformed_file_is_refused(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "viewer-key"
    path.write_bytes(body)
    path.chmod(0o600)
    with pytest.raises(ViewerKeyError, match="must hold 64 lower-case hex digits"):
        ViewerKeys.from_file(path)


def test_a_file_without_its_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "viewer-key"
    path.write_bytes(SECRET.hex().encode())
    path.chmod(0o600)
    ip = IPv4Address("203.0.113.7")
    assert ViewerKeys.from_file(path).key(ip) == ViewerKeys(SECRET).key(ip)


def test_a_folder_is_not_a_key_file(tmp_path: Path) -> None:
    folder = tmp_path / "viewer-key"
    folder.mkdir(mode=0o700)
    with pytest.raises(ViewerKeyError, match="not a regular file"):
        ViewerKeys.from_file(folder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = _made(tmp_path)
    path.chmod(0)
    with pytest.raises(ViewerKeyError, match="cannot be read"):
        ViewerKeys.from_file(path)
