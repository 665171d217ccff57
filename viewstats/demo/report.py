"""The demo's view of the API: its key at work, this run's countries, the printed table, and the
dashboard link that shows the same window."""

from __future__ import annotations

import json
import time
import urllib.error
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from viewstats.demo.web import DemoError, open_url

KEY_PICKUP_TIMEOUT = 5.0  # a running server reloads the key file within 2 s


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    try:
        with open_url(url, {"Authorization": f"apikey {token}"}) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        raise DemoError(f"{url}: {exc}") from exc


def _window(since: datetime, until: datetime) -> dict[str, str]:
    return {"date_from": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date_to": until.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _countries_url(base: str, since: datetime, until: datetime) -> str:
    return f"{base}/streaming/statistics/countries?" + urlencode(_window(since, until))


def dashboard_url(base: str, token: str, since: datetime, until: datetime) -> str:
    """The dashboard on the table's window; the key rides in the fragment, which the browser
    keeps to itself (architecture §14)."""
    return f"{base}/#" + urlencode({"key": token, **_window(since, until)}, safe="$:")


def wait_for_key(base: str, token: str) -> None:
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
