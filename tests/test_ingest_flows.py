"""Events over HTTP into real `viewstats run` processes, on both write paths, with a real
SIGTERM while they flow: what was acknowledged is counted exactly once, and /metrics agrees."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.api import COUNTRIES
from tests.support.kafka import KafkaBroker
from tests.support.processes import serving, viewstats
from viewstats.devtools.topics import create_topic

CLIENT = 17
VIEWERS = {"1.1.1.7": "AU", "8.8.8.8": "US", "81.2.69.160": "GB", "2001:db8::5": "DE",
           "10.1.2.3": "ZZ", "127.0.0.1": "NZ"}


def _token(data: Path) -> str:
    created = viewstats("keys", "create", "--client-id", str(CLIENT), "--data-dir", str(data))
    return created.stdout.strip().splitlines()[-1]


def _views(base: str, token: str) -> dict[str, int]:
    response = httpx.get(base + COUNTRIES, headers={"Authorization": f"apikey {token}"},
                         params={"date_from": "2020-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200, response.text
    return {row["country"]: row["views"] for row in response.json()["data"]}


def _metric(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def _view(view_id: str, event: str) -> dict[str, object]:
    return {"event": event, "client_id": CLIENT, "video_id": "v-9", "type": "vod",
            "view_id": view_id}


def _settled_views(base: str, token: str, at_least: int, patience: float) -> Counter[str]:
    """The views once they reach `at_least` in total (consumers may still be catching up)."""
    deadline = time.monotonic() + patience
    while sum((views := Counter(_views(base, token))).values()) < at_least:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return views


def _assert_nothing_lost(stored: Counter[str], acked: Counter[str], unanswered: int) -> None:
    assert acked - stored == Counter(), "acknowledged views were lost"
    # An answer lost with the connection may belong to a stored view; nothing else may be extra.
    assert sum((stored - acked).values()) <= unanswered


def _flow_until_stopped(base: str, stop: threading.Event) -> tuple[Counter[str], int]:
    """Single-view beacons until the server goes away: (acknowledged views, unanswered)."""
    acked: Counter[str] = Counter()
    unanswered = 0
    ips = list(VIEWERS)
    with httpx.Client(base_url=base, timeout=10) as http:
        for i in range(1_000_000):
            ip = ips[i % len(ips)]
            try:
                response = http.post("/events", json=_view(str(uuid.uuid4()), "watch"),
                                     headers={"X-Forwarded-For": ip})
            except httpx.TransportError:
                unanswered += 1
                if stop.is_set():
                    break
                continue
            if response.status_code == 202:
                acked[VIEWERS[ip]] += 1
    return acked, unanswered


def _sigterm_during_flow(base: str, proc_pid: int, seconds: float) -> tuple[Counter[str], int]:
    stop = threading.Event()
    result: list[tuple[Counter[str], int]] = []
    sender = threading.Thread(target=lambda: result.append(_flow_until_stopped(base, stop)))
    sender.start()
    threading.Event().wait(seconds)
    stop.set()
    os.kill(proc_pid, signal.SIGTERM)
    sender.join(timeout=120)
    return result[0]


@pytest.mark.chdb
@pytest.mark.slow
def test_embedded_sigterm_while_events_flow_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = _token(data)
    with serving("run", data) as (base, proc):
        acked, unanswered = _sigterm_during_flow(base, proc.pid, 3.0)
        assert proc.wait(timeout=60) == 0
    assert sum(acked.values()) > 0
    with serving("run", data) as (base, _):
        _assert_nothing_lost(Counter(_views(base, token)), acked, unanswered)


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_100k_events_through_kafka_then_sigterm_mid_flow(kafka: KafkaBroker,
                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = _token(data)
    topic = f"events-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=4))
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": f"group-{topic}"}
    expected: Counter[str] = Counter()
    ips = list(VIEWERS)
    with serving("run", data, env=env) as (base, proc), httpx.Client(base_url=base) as http:
        # 25,000 views x (init, start, watch, a retried watch) = 100,000 events, 100 per request.
        for request in range(1000):
            ip = ips[request % len(ips)]
            body = []
            for _ in range(25):
                view = str(uuid.uuid4())
                body += [_view(view, e) for e in ("init", "start", "watch", "watch")]
            response = http.post("/events", json=body, headers={"X-Forwarded-For": ip})
            assert response.status_code == 202, response.text
            expected[VIEWERS[ip]] += 25
        assert _settled_views(base, token, 25_000, patience=180) == expected
        assert _metric(base, "viewstats_events_accepted_total") == 100_000
        acked, unanswered = _sigterm_during_flow(base, proc.pid, 3.0)
        assert proc.wait(timeout=60) == 0
    with serving("run", data, env=env) as (base, _):
        stored = _settled_views(base, token, sum((expected + acked).values()), patience=120)
        _assert_nothing_lost(stored - expected, acked, unanswered)
