"""The scaled-out topology for real (architecture §2, §9): every role its own OS process.

Two collectors, two consumers in one group and two query APIs share one Kafka broker and one
database over HTTP (CLICKHOUSE_URL: the chDB endpoint, or with VIEWSTATS_DOCKER=1 real
clickhouse-server and apache/kafka containers). Each process has a data dir of its own, as a
container would; only the key file is shared, as a mounted secret is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support.api import COUNTRIES
from tests.support.processes import serving, viewstats
from tests.support.server_mode import DOCKER, clickhouse_url, kafka_container
from viewstats.devtools.processes import VIEWSTATS, free_port, stop
from viewstats.devtools.topics import create_topic

pytestmark = [pytest.mark.chdb, pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4
CLIENTS = (41, 42)
# The shared test GeoIP database's answers for these viewer addresses (127.0.0.1: no header).
VIEWERS = {"1.1.1.7": "AU", "8.8.8.8": "US", "81.2.69.160": "GB", None: "NZ"}
VISIBLE_WITHIN = 60.0


@pytest.fixture
def bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    if DOCKER:
        with kafka_container() as address:
            yield address
    else:
        yield request.getfixturevalue("kafka").bootstrap


@contextmanager
def _consumer(data_dir: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with open(data_dir.parent / f"{data_dir.name}.log", "wb") as log:
        proc = subprocess.Popen([*VIEWSTATS, "consumer", "--data-dir", str(data_dir),
                                 "--port", str(free_port())],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        yield proc
    finally:
        stop(proc, timeout=60)
    assert proc.returncode == 0, f"a consumer did not stop cleanly on SIGTERM: see {log.name}"


def _beacons(client_id: int, view_id: str) -> list[dict[str, object]]:
    return [{"event": event, "client_id": client_id, "video_id": "v-1", "type": "vod",
             "view_id": view_id} for event in ("init", "start", "watch")]


def _views(api: str, token: str) -> dict[str, int]:
    response = httpx.get(api + COUNTRIES, headers={"Authorization": f"apikey {token}"},
                         params={"date_from": "2020-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200, response.text
    return {row["country"]: row["views"] for row in response.json()["data"]}


def test_collectors_consumers_and_apis_as_processes_count_exactly(
        tmp_path: Path, bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    topic = f"player-events-{suffix}"
    asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
    with clickhouse_url(tmp_path / "clickhouse", tmp_path / "clickhouse.log") as url:
        env = {"CLICKHOUSE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "VIEWSTATS_TOPIC": topic, "VIEWSTATS_CONSUMER_GROUP": f"viewstats-{suffix}",
               "API_KEYS_FILE": str(tmp_path / "secrets" / "api_keys")}
        migrated = viewstats("migrate", "--data-dir", str(tmp_path / "migrate"), env=env)
        assert "applied 0002_player_events" in migrated.stdout
        tokens = {c: viewstats("keys", "create", "--client-id", str(c), "--data-dir",
                               str(tmp_path / "keys"), env=env).stdout.split()[-1]
                  for c in CLIENTS}
        with ExitStack() as stack:
            collectors = [stack.enter_context(serving("collector", tmp_path / f"collector-{n}",
                                                      env))[0] for n in range(2)]
            apis = [stack.enter_context(serving("api", tmp_path / f"api-{n}", env))[0]
                    for n in range(2)]
            with ExitStack() as consumers:
                for n in range(2):
                    consumers.enter_context(_consumer(tmp_path / f"consumer-{n}", env))
                expected = _send(collectors)
                for client_id, token in tokens.items():
                    for api in apis:
                        _wait_for(partial(_views, api, token), expected[client_id])
            # Stopped (flushed, committed): nothing arrives late to count twice.
            for client_id, token in tokens.items():
                assert [_views(api, token) for api in apis] == [expected[client_id]] * 2


def _send(collectors: list[str]) -> dict[int, dict[str, int]]:
    """Views through both collectors; every beacon is sent twice, once through each."""
    expected: dict[int, Counter[str]] = {c: Counter() for c in CLIENTS}
    with httpx.Client() as http:
        for n in range(40):
            client_id = CLIENTS[n % len(CLIENTS)]
            ip, country = list(VIEWERS.items())[n % len(VIEWERS)]
            body = _beacons(client_id, str(uuid.uuid4()))
            for collector in (collectors[n % 2], collectors[(n + 1) % 2]):
                response = http.post(collector + "/events", json=body,
                                     headers={"X-Forwarded-For": ip} if ip else {})
                assert response.status_code == 202, response.text
            expected[client_id][country] += 1
    return {c: dict(counts) for c, counts in expected.items()}


def _wait_for(read: Callable[[], dict[str, int]], expected: dict[str, int]) -> None:
    deadline = time.monotonic() + VISIBLE_WITHIN
    while (got := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == expected
