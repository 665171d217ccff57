"""Unique viewers without storing an IP address: each beacon carries a keyed hash of it.

The key of an address is the first 8 bytes of HMAC-SHA256(secret, the address's packed bytes),
big-endian, as an unsigned integer; an IPv4-mapped IPv6 address is hashed as the IPv4 address it
carries, so a dual-stack listener sees one viewer. 0 means "no viewer key" (no address), so a
hash that comes out 0 is stored as 1: one in 2^64, a collision nobody can count.

The secret is 32 random bytes, written as 64 hex digits and a newline to a file (VIEWER_KEY_FILE,
default <data-dir>/viewer-key) that every collector of a platform must read: two secrets give
one viewer two keys. The file must be readable by its owner only: with the secret, every IPv4
address (2^32 of them) can be hashed in minutes and each key turned back into its address.
Reading refuses a missing file, a malformed one, and one that group or others may read; each
error names the file and the fix. `create_secret_file` makes one atomically, mode 0600, for the
embedded platform's first start; it never replaces an existing file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Final

SECRET_BYTES: Final = 32
NO_VIEWER: Final = 0

_FILE = re.compile(rb"[0-9a-f]{64}\n?")
_LONGEST: Final = 2 * SECRET_BYTES + 1
_SHA256_BLOCK: Final = 64
_IPV4_MAPPED: Final = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96
_MAKE_ONE = ("python3 -c 'import secrets; print(secrets.token_hex(32))' > {path} && "
             "chmod 600 {path}")


class ViewerKeyError(ValueError):
    """The viewer key file is missing, unreadable, malformed or too open; the message says
    which file and how to fix it."""


class ViewerKeys:
    """Keys of viewers' addresses under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"the secret must be {SECRET_BYTES} bytes, got {len(secret)}")
        # HMAC (RFC 2104) with its two keyed SHA-256 states made once and copied per key:
        # hmac.digest, one-shot as it is, sets OpenSSL's HMAC up again at every call, and a key
        # cost 4.9 µs with it against 2.8 µs so (benchmarks.user_agent_cost measures key()).
        block = secret.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    @classmethod
    def from_file(cls, path: Path) -> ViewerKeys:
        """The secret of `path`; ViewerKeyError when it is missing, open to others or bad."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ViewerKeyError(
                f"viewer key file {path}: missing. Every collector of the platform must read "
                f"the same one: copy the file the others read (VIEWER_KEY_FILE), or make the "
                f"first with: {_MAKE_ONE.format(path=path)}") from None
        except OSError as exc:
            raise ViewerKeyError(
                f"viewer key file {path}: cannot be read: {exc.strerror or exc}") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise ViewerKeyError(f"viewer key file {path}: not a regular file")
            # Checked on the file read, not on the path, which could be swapped in between.
            if mode & 0o077:
                raise ViewerKeyError(
                    f"viewer key file {path}: group or others may read it (mode "
                    f"{stat.S_IMODE(mode):04o}); anyone with the secret can turn viewer keys "
                    f"back into IPv4 addresses. Run: chmod 600 {path}")
            body = os.read(fd, _LONGEST + 1)  # one byte more shows a longer file
        finally:
            os.close(fd)
        if _FILE.fullmatch(body) is None:
            raise ViewerKeyError(
                f"viewer key file {path}: must hold 64 lower-case hex digits (32 random bytes) "
                f"and a newline; make one with: {_MAKE_ONE.format(path=path)}")
        return cls(bytes.fromhex(body[:64].decode()))

    def key(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> int:
        """The viewer key of `ip`, from 1 to 2^64 - 1; NO_VIEWER (0) for no address."""
        if ip is None:
            return NO_VIEWER
        packed = ip.packed
        if packed[:12] == _IPV4_MAPPED:
            packed = packed[12:]
        inner = self._inner.copy()
        inner.update(packed)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:8], "big") or 1


def create_secret_file(path: Path) -> bool:
    """Make `path` with a new secret, mode 0600; False when a file is there already (kept).

    The secret is written to a temporary file beside it and linked into place: the link
    fails when `path` exists, so a concurrent creator's secret is never replaced, and no
    reader ever sees a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_hex(SECRET_BYTES).encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the link itself survives a crash, so the keys stay stable
    finally:
        os.close(directory)
    return True
