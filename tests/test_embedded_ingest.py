"""The embedded default end to end: beacons over HTTP into a real `viewstats run` process."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.api import COUNTRIES
from tests.support.processes import key_token, serving, viewstats

pytestmark = [pytest.mark.chdb, pytest.mark.slow]

CLIENT = 17
# The shared test GeoIP database's answers for these viewer addresses.
VIEWERS = {"1.1.1.7": "AU", "8.8.8.8": "US", "81.2.69.160": "GB", "2001:db8::5": "DE",
           "10.1.2.3": "ZZ", "::ffff:1.1.1.9": "AU", "127.0.0.1": "NZ"}


def _beacon(event: str, view_id: str) -> dict[str, object]:
    return {"event": event, "client_id": CLIENT, "video_id": "v-1", "type": "vod",
            "view_id": view_id}


def _views(base: str, token: str) -> dict[str, int]:
    response = httpx.get(base + COUNTRIES, headers={"Authorization": f"apikey {token}"},
                         params={"date_from": "2020-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200, response.text
    return {row["country"]: row["views"] for row in response.json()["data"]}


def test_an_acknowledged_view_is_readable_at_once_and_survives_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = key_token(data, CLIENT)
    expected: Counter[str] = Counter()
    with serving("run", data) as (base, proc), httpx.Client(base_url=base) as http:
        for round_ in range(3):
            for ip, country in VIEWERS.items():
                view = str(uuid.uuid4())
                body = [_beacon("init", view), _beacon("start", view), _beacon("watch", view)]
                response = http.post("/events", json=body, headers={"X-Forwarded-For": ip})
                assert response.status_code == 202, response.text
                assert response.json() == {"accepted": 3}
                expected[country] += 1
                assert _views(base, token) == dict(expected), (round_, ip)
        # A player retrying its beacon (same view, same event) is one view.
        retried = str(uuid.uuid4())
        for _ in range(3):
            assert http.post("/events", content=f'{{"event":"watch","client_id":{CLIENT},'
                             f'"video_id":"v","type":"live","view_id":"{retried.upper()}"}}',
                             headers={"Content-Type": "text/plain;charset=UTF-8",
                                      "X-Forwarded-For": "8.8.8.8"}).status_code == 202
        expected["US"] += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with serving("run", data) as (base, _):
        assert _views(base, token) == dict(expected)


def test_a_mixed_request_stores_the_good_events_and_names_the_bad(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = key_token(data, CLIENT)
    good = _beacon("watch", str(uuid.uuid4()))
    bad = {**_beacon("watch", "not-a-uuid"), "client_id": "17"}
    with serving("run", data) as (base, _):
        response = httpx.post(base + "/events", json=[bad, good],
                              headers={"X-Forwarded-For": "1.1.1.1"})
        assert response.status_code == 400
        assert response.json()["accepted"] == 1
        assert any(e.startswith("events[0].client_id") for e in response.json()["errors"])
        assert any(e.startswith("events[0].view_id") for e in response.json()["errors"])
        assert _views(base, token) == {"AU": 1}


def test_an_untrusted_peer_cannot_claim_another_address(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = key_token(data, CLIENT)
    with serving("run", data, env={"TRUSTED_PROXIES": "192.0.2.0/24"}) as (base, _):
        response = httpx.post(base + "/events", json=_beacon("watch", str(uuid.uuid4())),
                              headers={"X-Forwarded-For": "1.1.1.1"})
        assert response.status_code == 202
        assert _views(base, token) == {"NZ": 1}  # the socket peer, 127.0.0.1


def test_a_missing_geoip_database_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    result = viewstats("run", "--data-dir", str(tmp_path), "--port", "1", check=False,
                       env={"GEOIP_DB": str(tmp_path / "nope.mmdb")})
    assert result.returncode == 2
    assert "GeoIP database not found" in result.stderr
    assert "GEOIP_DB" in result.stderr
