"""API keys (DESIGN §7): `<key_id>$<secret>` tokens, each mapped to one client_id.

The file holds key id, client id and a SHA-256 of the secret, never the secret. Secrets are 256
random bits, so a plain hash cannot be brute-forced and keeps verification cheap per request.
Writers replace the file atomically under a lock; readers notice the change by its stat.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

RELOAD_INTERVAL_S = 0.5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiKey:
    key_id: int
    client_id: int
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_keys(path: Path) -> list[ApiKey]:
    if not path.exists():
        return []
    return [ApiKey(**entry) for entry in orjson.loads(path.read_bytes())["keys"]]


def _write_keys(path: Path, keys: list[ApiKey]) -> None:
    body = orjson.dumps({"keys": [asdict(k) for k in keys]}, option=orjson.OPT_INDENT_2)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        # Hashes of 256-bit secrets reveal nothing; readable, so servers running as another
        # user (a container's) can load a file that `keys create` wrote.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[list[ApiKey]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield read_keys(path)


def create_key(path: Path, client_id: int) -> tuple[ApiKey, str]:
    """Add a key for `client_id`; return it with its token (the only time the secret exists)."""
    secret = secrets.token_hex(32)
    with _locked(path) as keys:
        key = ApiKey(max((k.key_id for k in keys), default=0) + 1, client_id, _hash(secret),
                     _now())
        _write_keys(path, [*keys, key])
    return key, f"{key.key_id}${secret}"


def revoke_key(path: Path, key_id: int) -> ApiKey:
    with _locked(path) as keys:
        matches = [k for k in keys if k.key_id == key_id]
        if not matches:
            raise KeyError(f"no key with id {key_id} in {path}")
        revoked = ApiKey(**{**asdict(matches[0]), "revoked_at": matches[0].revoked_at or _now()})
        _write_keys(path, [revoked if k.key_id == key_id else k for k in keys])
    return revoked


class KeyStore:
    """The server's view of the key file, reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._active: dict[int, ApiKey] = {}
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        self._checked = time.monotonic()
        try:
            st = self._path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._active = {k.key_id: k for k in read_keys(self._path) if k.revoked_at is None}
        except (OSError, ValueError, TypeError) as exc:
            # A hand-edited file that does not parse keeps the keys we had, loudly.
            log.error("cannot read API keys from %s, keeping the previous keys: %s",
                      self._path, exc)

    def authenticate(self, token: str) -> int | None:
        """The client_id of a valid token, else None."""
        if time.monotonic() - self._checked >= RELOAD_INTERVAL_S:
            self._reload_if_changed()
        key_id, sep, secret = token.partition("$")
        if not sep or not (key_id.isascii() and key_id.isdigit()) or len(key_id) > 18:
            return None
        key = self._active.get(int(key_id))
        if key is None or not hmac.compare_digest(key.secret_sha256, _hash(secret)):
            return None
        return key.client_id
