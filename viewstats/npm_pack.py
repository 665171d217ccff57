"""`npm pack PACKAGE@VERSION`: one release's tarball from the npm registry, through the npm client.

The client, not our own HTTP, does the download: it honours the user's npm configuration
(registry mirror, proxy, CA certificates in ~/.npmrc) and its own cache, and checks the download
against the registry's `dist.integrity` before we check it again (viewstats/assets.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Final

# npm's error codes that mean the registry could not be reached at all.
_OFFLINE: Final = frozenset({"ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT",
                             "ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "ERR_SOCKET_TIMEOUT"})


class NpmError(RuntimeError):
    """npm is missing, the registry is unreachable, or npm refused; the message says which."""


def npm_pack(spec: str, dest: Path) -> Path:
    """Download `spec` into the empty folder `dest`; the tarball's path."""
    exe = shutil.which("npm")
    if exe is None:
        raise NpmError("npm not found on PATH: `viewstats setup` fetches from the npm registry "
                       "with the npm client; install Node.js, which includes npm (e.g. "
                       "`apt-get install nodejs npm`, or https://nodejs.org/), then run it again")
    # Run in `dest`: a package.json or .npmrc of whatever project the user stands in is no input.
    done = subprocess.run([exe, "pack", spec, "--pack-destination", str(dest), "--json",
                           "--ignore-scripts", "--loglevel=error"],
                          cwd=dest, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        try:  # with --json, npm reports {"error": {"code": ..., "summary": ...}} on stdout
            error = json.loads(done.stdout)["error"]
            code, summary = str(error.get("code")), str(error.get("summary"))
        except (ValueError, KeyError, TypeError, AttributeError):  # older npm: stderr only
            code, summary = "", (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        if code in _OFFLINE:
            raise NpmError(f"cannot reach the npm registry (offline?) for {spec}: {summary}; "
                           "setup needs it once, later runs use the cache")
        raise NpmError(f"npm pack {spec} failed ({code or done.returncode}): {summary}")
    packed = sorted(dest.glob("*.tgz"))
    if len(packed) != 1:
        raise NpmError(f"npm pack {spec} left {len(packed)} tarballs in {dest}, expected one")
    return packed[0]
