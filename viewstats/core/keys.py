"""API keys (architecture §7): `<key_id>$<secret>` tokens, each mapped to one client_id.

The file holds key id, client id and a SHA-256 of the secret, never the secret. Secrets are 256
random bits, so a plain hash cannot be brute-forced and keeps verification cheap per request.
Writers replace the file atomically under a lock; readers notice the change by its stat.

The file is read strictly: a JSON object `{"keys": [...]}` whose entries hold exactly the
fields of `ApiKey` with their types; anything else is a `KeyFileError` naming the file and the
fault. A missing file means no keys.

The server fails closed on a bad file: while the file cannot be read or is malformed,
`KeyStore` accepts no key at all (every request gets the ordinary 401). It looks at the file at
most every RELOAD_INTERVAL_S, so a version that revoked a key may have been replaced by the bad
one before it was ever seen; keeping the previously loaded keys could revive that key, and the
server cannot know which keys a version it never saw revoked. It logs an error at every reload
check that finds the file still bad, and as soon as a good file is in place its keys apply
(revoked keys in it stay revoked). The commands that write the file refuse to start from a bad
one, so they never overwrite it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import orjson

from viewstats.core.events import MAX_CLIENT_ID

RELOAD_INTERVAL_S = 0.5
log = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_KEY_ID = 10**18 - 1  # authenticate() reads at most 18 digits of a token's key id


class KeyFileError(ValueError):
    """The key file exists but cannot be read or is not a key file; the message says why."""


class UnknownKeyError(LookupError):
    """No key in the file has the id asked for: the caller's mistake, which the message names."""


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


_FIELDS = frozenset(f.name for f in fields(ApiKey))


def _is_id(value: object, top: int) -> bool:
    # `type(...) is int`: JSON true is a Python bool, which isinstance() calls an int.
    return type(value) is int and 0 <= value <= top


def _entry_fault(entry: object) -> str | None:
    """What is wrong with one entry of the `keys` list, or None when it is a valid key."""
    if not isinstance(entry, dict):
        return "must be a JSON object"
    missing, unknown = _FIELDS - entry.keys(), entry.keys() - _FIELDS
    if missing:
        return "missing " + ", ".join(sorted(missing))
    if unknown:
        return "unknown field " + ", ".join(sorted(map(str, unknown)))
    if not _is_id(entry["key_id"], _MAX_KEY_ID):
        return f"key_id: must be an integer from 0 to {_MAX_KEY_ID}"
    # Bounded: the client_id goes into every query as a UInt32.
    if not _is_id(entry["client_id"], MAX_CLIENT_ID):
        return f"client_id: must be an integer from 0 to {MAX_CLIENT_ID}"
    secret_hash = entry["secret_sha256"]
    # Checked, not just typed: compare_digest raises on a non-ASCII str, a 500 per request.
    if not isinstance(secret_hash, str) or _SHA256_HEX.fullmatch(secret_hash) is None:
        return "secret_sha256: must be 64 lower-case hex digits"
    if not isinstance(entry["created_at"], str):
        return "created_at: must be a string"
    if entry["revoked_at"] is not None and not isinstance(entry["revoked_at"], str):
        return "revoked_at: must be a string or null"
    return None


def read_keys(path: Path) -> list[ApiKey]:
    """The keys in `path`, none if it does not exist; KeyFileError if it is not a key file."""
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyFileError(f"API key file {path}: cannot be read: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise KeyFileError(f"API key file {path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyFileError(f'API key file {path}: must be a JSON object {{"keys": [...]}}')
    if doc.keys() != {"keys"}:
        extra = ", ".join(sorted(doc.keys() - {"keys"}))
        raise KeyFileError(f"API key file {path}: unknown member {extra} next to keys")
    keys: list[ApiKey] = []
    seen: set[int] = set()
    for index, entry in enumerate(doc["keys"]):
        fault = _entry_fault(entry)
        if fault is None and entry["key_id"] in seen:
            # Which of the two is the real one is unknowable; one may be the revoked record.
            fault = f"key_id {entry['key_id']} appears twice"
        if fault is not None:
            raise KeyFileError(f"API key file {path}: keys[{index}]: {fault}")
        seen.add(entry["key_id"])
        keys.append(ApiKey(**entry))
    return keys


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
            raise UnknownKeyError(f"no key with id {key_id} in {path}")
        revoked = ApiKey(**{**asdict(matches[0]), "revoked_at": matches[0].revoked_at or _now()})
        _write_keys(path, [revoked if k.key_id == key_id else k for k in keys])
    return revoked


class KeyStore:
    """The server's view of the key file, reloaded when the file changes; fails closed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._good = False  # the last look found a usable file (or none): skip it if unchanged
        self._checked = 0.0
        self._active: dict[int, ApiKey] = {}
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        self._checked = time.monotonic()
        try:
            st = self._path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        except OSError:
            stamp = None
            self._good = False  # read_keys below names the fault
        # A bad file is read again at every check: an in-place fix can keep its stat.
        if self._good and stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            keys = read_keys(self._path)
        except KeyFileError as exc:
            self._active, self._good = {}, False
            log.error("%s; accepting no API key until it is fixed", exc)
            return
        self._active = {k.key_id: k for k in keys if k.revoked_at is None}
        self._good = True

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
