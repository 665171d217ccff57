"""`viewstats demo`: simulated players from many countries, then the country table
(architecture §8).

Each simulated player is one playback session: `init` and `start`, and for most a `watch`, sent
to `POST /events` like the real player's beacons. The viewer's address is a real public IPv4
address from a country of the DB-IP database, passed in `X-Forwarded-For`; the demo talks to the
platform over loopback, which `TRUSTED_PROXIES` trusts by default, so the collector believes it.
Some players resend their `watch` as after a network error, and are still counted once.

The table is read back through the public API over exactly the demo's time window, so it shows
this run's views only, and is checked against what the players sent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import HTTPResponse
from pathlib import Path
from urllib.parse import urlencode

from viewstats.core import keys
from viewstats.core.settings import Settings
from viewstats.ingest.collector.geoip import CountryResolver, GeoIPDatabaseError
from viewstats.player.sample_stream import FfmpegMissing, make_sample_stream

DEMO_CLIENT_ID = 17
VIDEO_ID = "demo"
COUNTRIES = 30  # the most address-rich countries of the database take part
WATCH_SHARE = 0.8  # players who stay 5 s
RESEND_SHARE = 0.05  # watchers whose watch is sent twice, as after a lost answer
WORKERS = 8
DEFAULT_PORT = 8000
HTTP_TIMEOUT = 10.0
SEND_ATTEMPTS = 3
START_TIMEOUT = 60.0
KEY_PICKUP_TIMEOUT = 5.0  # a running server reloads the key file within 2 s
LOOPBACK = "127.0.0.0/8,::1/128"


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


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
        with _platform(base_url, settings.data_dir) as (base, server), \
                _demo_key(settings.keys_path, client_id) as token:
            result = _demo(base, token, ips, players, client_id)
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
    _wait_for_key(base, token)
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
    print(f"player: {player_url}")
    counted = {row["country"]: row["views"] for row in rows}
    if counted != dict(result.watched):
        print(f"viewstats demo: the API shows {counted}, the players made "
              f"{dict(result.watched)}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _demo_key(keys_path: Path, client_id: int) -> Iterator[str]:
    """A key for the demo's client, revoked afterwards: its token is never shown anywhere."""
    key, token = keys.create_key(keys_path, client_id)
    try:
        yield token
    finally:
        keys.revoke_key(keys_path, key.key_id)


# --- viewers ---------------------------------------------------------------------------------

def country_ips(geoip: Path, countries: int = COUNTRIES) -> dict[str, list[str]]:
    """Real public IPv4 addresses of the `countries` countries holding most of the samples.

    The IPv4 space is sampled on a fixed grid (a few thousand addresses) and each address is
    looked up in the database, so the countries and their weight come from the real data.
    """
    found: dict[str, list[str]] = {}
    with CountryResolver(geoip) as resolver:
        for first in range(1, 224):
            for second in range(0, 256, 4):
                ip = ipaddress.IPv4Address(f"{first}.{second}.{(first * 7 + second) % 256}."
                                           f"{(first + second) % 250 + 1}")
                if ip.is_global and (code := resolver.country(ip)) != "ZZ":
                    found.setdefault(code, []).append(str(ip))
    biggest = sorted(found, key=lambda code: (-len(found[code]), code))[:countries]
    if not biggest:
        raise DemoError(f"{geoip} knows no country of any sampled public address")
    return {code: found[code] for code in biggest}


@dataclass
class Outcome:
    watched: Counter[str] = field(default_factory=Counter)  # country -> views counted
    resent: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Viewers:
    """Players of one video of one client, sending beacons to `events_url` from `player_url`."""

    events_url: str
    player_url: str
    client_id: int

    def simulate(self, ips: dict[str, list[str]], players: int, rng: random.Random) -> Outcome:
        """Send every player's events, many players at once as real viewers do, with progress."""
        codes = list(ips)
        # Address-rich countries bring more viewers, flattened so that small ones still show.
        weights = [len(ips[code]) ** 0.5 for code in codes]
        plans = []
        for _ in range(players):
            code = rng.choices(codes, weights)[0]
            watches = rng.random() < WATCH_SHARE
            plans.append((code, rng.choice(ips[code]), watches,
                          watches and rng.random() < RESEND_SHARE))
        outcome = Outcome()
        lock = threading.Lock()
        progress = Progress(players)

        def play(code: str, ip: str, watches: bool, resends: bool) -> None:
            view_id = str(uuid.uuid4())
            events = ["init", "start"] + ["watch"] * (watches + resends)
            accepted = [self.send(ip, event, view_id) for event in events]
            with lock:
                outcome.failed += accepted.count(False)
                outcome.watched[code] += any(accepted[2:])
                outcome.resent += resends
            progress.advance()

        with ThreadPoolExecutor(WORKERS) as pool:
            for done in [pool.submit(play, *plan) for plan in plans]:
                done.result()
        progress.close()
        outcome.watched = +outcome.watched  # drop countries whose players all left early
        return outcome

    def send(self, ip: str, event: str, view_id: str) -> bool:
        """One beacon as the player sends it; a network error or a 5xx is retried, as it does."""
        body = json.dumps({"event": event, "client_id": self.client_id, "video_id": VIDEO_ID,
                           "type": "vod", "view_id": view_id}).encode()
        headers = {"Content-Type": "text/plain;charset=UTF-8", "X-Forwarded-For": ip,
                   "Referer": self.player_url}
        for attempt in range(SEND_ATTEMPTS):
            try:
                with _open(self.events_url, headers, body) as response:
                    return bool(response.status == 202)
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return False
            except OSError:
                pass
            time.sleep(0.2 * 2**attempt)
        return False


class Progress:
    """A progress bar on stderr: one line redrawn at most 10 times a second on a terminal, a
    line per tenth done otherwise (so that a log is not filled with carriage returns)."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.started = self.drawn = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self._draw()

    def advance(self) -> None:
        with self.lock:
            self.done += 1
            if self.tty:
                due = time.monotonic() - self.drawn >= 0.1
            else:
                due = 10 * self.done // self.total > 10 * (self.done - 1) // self.total
            if due or self.done == self.total:
                self._draw()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")

    def _draw(self) -> None:
        self.drawn = time.monotonic()
        filled = self.WIDTH * self.done // self.total
        line = (f"  players [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{self.done}/{self.total}  {self.drawn - self.started:.1f} s")
        sys.stderr.write("\r" + line if self.tty else line + "\n")
        sys.stderr.flush()


# --- the API ---------------------------------------------------------------------------------

def _open(url: str, headers: dict[str, str], body: bytes | None = None) -> HTTPResponse:
    # Every URL here starts with a base URL that run_demo checked to be http(s).
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310
    response: HTTPResponse = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)  # noqa: S310
    return response


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    try:
        with _open(url, {"Authorization": f"apikey {token}"}) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        raise DemoError(f"{url}: {exc}") from exc


def _countries_url(base: str, since: datetime, until: datetime) -> str:
    return f"{base}/streaming/statistics/countries?" + urlencode({
        "date_from": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date_to": until.strftime("%Y-%m-%dT%H:%M:%SZ")})


def _wait_for_key(base: str, token: str) -> None:
    now = datetime.now(UTC)
    url = _countries_url(base, now - timedelta(minutes=1), now)
    deadline = time.monotonic() + KEY_PICKUP_TIMEOUT
    while (status := _get(url, token)[0]) == 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    if status != 200:
        raise DemoError(f"{url} answered {status} to the demo's key: does the server read "
                        "the key file of --data-dir (or the same API_KEYS_FILE)?")


def countries(base: str, token: str, since: datetime, until: datetime) -> list[dict[str, object]]:
    url = _countries_url(base, since, until)
    status, body = _get(url, token)
    rows = body.get("data")
    if status != 200 or not isinstance(rows, list):
        raise DemoError(f"{url} answered {status}: {body}")
    return rows


def table(rows: list[dict[str, object]], since: datetime, until: datetime) -> str:
    lines = [f"views by country from {since:%Y-%m-%dT%H:%M:%SZ} to {until:%Y-%m-%dT%H:%M:%SZ}",
             f"{'views':>7}  country"]
    lines += [f"{row['views']:>7}  {row['country']}  {row['country_name']}" for row in rows]
    total = sum(int(str(row["views"])) for row in rows)
    lines += [f"{total:>7}  total", "IP geolocation by DB-IP (https://db-ip.com)"]
    return "\n".join(lines)


# --- the embedded platform -------------------------------------------------------------------

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
    port = _port()
    base = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "demo-server.log"
    print(f"viewstats demo: starting `viewstats run --data-dir {data_dir}` on {base} "
          f"(log: {log})", file=sys.stderr)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "viewstats.cli", "run", "--host", "127.0.0.1",
             "--port", str(port), "--data-dir", str(data_dir)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # The demo's beacons come over loopback with the viewer in X-Forwarded-For.
            env={**os.environ, "TRUSTED_PROXIES": LOOPBACK})
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise DemoError("the platform did not start (is another viewstats using "
                                f"{data_dir}? then pass --url): " + " | ".join(tail))
            time.sleep(0.2)
        yield base, proc
    finally:
        _stop(proc)


def _port() -> int:
    """8000 when free, so the printed player address is the one `viewstats run` serves later."""
    with socket.socket() as sock:
        # As uvicorn binds: a port whose last connections are still in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", DEFAULT_PORT))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(base: str) -> bool:
    try:
        with _open(base + "/openapi.json", {}):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the platform flushes and exits cleanly
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
