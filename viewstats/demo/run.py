"""The demo's run: a key for it, the platform (given or started here), players, then the table
and the dashboard link."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from viewstats.core import keys
from viewstats.core.settings import Settings
from viewstats.demo.report import countries, dashboard_url, table, wait_for_key
from viewstats.demo.viewers import VIDEO_ID, Viewers, country_ips
from viewstats.demo.web import DemoError
from viewstats.devtools.processes import NotServing, free_port, serving
from viewstats.ingest.collector.geoip import GeoIPDatabaseError
from viewstats.player.sample_stream import FfmpegMissing, make_sample_stream

DEMO_CLIENT_ID = 17
DEFAULT_PORT = 8000
LOOPBACK = "127.0.0.0/8,::1/128"


def run_demo(base_url: str | None, data_dir: Path, players: int = 500, *,
             client_id: int = DEMO_CLIENT_ID, keep_serving: bool = False) -> int:
    """Simulate `players` viewers against `base_url`, or a platform started on `data_dir`.

    Without `base_url`, `viewstats run --data-dir data_dir` is started on 127.0.0.1 (port 8000
    when free) and stopped at the end, or after Ctrl+C when `keep_serving`. With it, the server
    must read the key file of `data_dir` (or API_KEYS_FILE), where the demo's key is made.
    Returns 0 when the API shows exactly the views the players made, 1 when not, 2 on an error.
    """
    try:
        settings = Settings.from_env(data_dir=data_dir)
        ips = country_ips(settings.geoip_path)
        with _platform(base_url, settings.data_dir) as (base, server):
            # Kept after the demo: the dashboard link it prints carries it (see _demo).
            key, token = keys.create_key(settings.keys_path, client_id)
            result = _demo(base, token, ips, players, client_id)
            print(f"viewstats demo: the dashboard link's key stays valid; `viewstats keys "
                  f"revoke {key.key_id}` revokes it", file=sys.stderr)
            if server is not None and keep_serving:
                print("viewstats demo: serving until Ctrl+C", file=sys.stderr)
                with contextlib.suppress(KeyboardInterrupt):
                    server.wait()
            elif server is not None:
                print(f"viewstats demo: the platform stops now; `viewstats run --data-dir "
                      f"{settings.data_dir}` serves the player again", file=sys.stderr)
            return result
    except (DemoError, GeoIPDatabaseError) as exc:
        print(f"viewstats demo: error: {exc}", file=sys.stderr)
        return 2


def _demo(base: str, token: str, ips: dict[str, list[str]], players: int,
          client_id: int) -> int:
    player_url = (f"{base}/player/{client_id}/{VIDEO_ID}"
                  f"?src={base}/media/test/index.m3u8&type=vod")
    wait_for_key(base, token)
    print(f"viewstats demo: {players} players from {len(ips)} countries -> {base}/events "
          f"(client {client_id})", file=sys.stderr)
    since = datetime.now(UTC).replace(microsecond=0)
    viewers = Viewers(f"{base}/events", player_url, client_id)
    # A fixed seed: the same mix of countries each run (view ids are random: uuid4).
    result = viewers.simulate(ips, players, random.Random(client_id))  # noqa: S311
    until = datetime.now(UTC).replace(microsecond=0)  # date_to covers its whole second
    rows = countries(base, token, since, until)
    print(table(rows, since, until))
    print(f"{sum(result.watched.values())} of {players} players watched 5 s; {result.resent} "
          f"resent their watch and were counted once; {result.failed} events not delivered")
    print(f"dashboard: {dashboard_url(base, token, since, until)}")
    print(f"player: {player_url}")
    counted = {row["country"]: row["views"] for row in rows}
    if counted != dict(result.watched):
        print(f"viewstats demo: the API shows {counted}, the players made "
              f"{dict(result.watched)}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _platform(base_url: str | None,
              data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes] | None]]:
    """The platform at `base_url`, or one started on `data_dir` for the demo and then stopped."""
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            raise DemoError(f"--url {base_url!r} must start with http:// or https://")
        yield base_url.rstrip("/"), None
        return
    try:
        make_sample_stream(data_dir / "media")
    except (FfmpegMissing, subprocess.CalledProcessError) as exc:
        print(f"viewstats demo: no test stream for the player ({exc})", file=sys.stderr)
    # 8000 when free, so the printed player address is the one `viewstats run` serves later.
    port = free_port(preferred=DEFAULT_PORT)
    base = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "demo-server.log"
    print(f"viewstats demo: starting `viewstats run --data-dir {data_dir}` on {base} "
          f"(log: {log})", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        try:
            # The demo's beacons come over loopback with the viewer in X-Forwarded-For.
            server = stack.enter_context(serving(
                "run", data_dir, port=port, log=log, env={"TRUSTED_PROXIES": LOOPBACK}))
        except NotServing as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise DemoError("the platform did not start (is another viewstats using "
                            f"{data_dir}? then pass --url): " + " | ".join(tail)) from exc
        yield server
