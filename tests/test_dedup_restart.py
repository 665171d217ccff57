"""A retried beacon counts once across a kill -9 and a restart of `viewstats run` (architecture §3):
embedded, and through Kafka to its consumer. The player resends a beacon whose answer it lost
with the same body, so the retry has the same view_id; the restarted writer knows the first
copy only from what is stored."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, serving, total_views
from tests.test_consumer import Progress
from viewstats.devtools.topics import create_topic

CLIENT = 17
DEADLINE_S = 60.0
XFF = {"X-Forwarded-For": "8.8.8.8"}  # US in the shared test GeoIP database

# Rows a server acknowledged two hours ago (beyond the default horizon of one hour), written
# straight into the data dir while no server runs: chDB lets one process hold a path.
STORE_OLD_WATCHES = """
import sys, time
from pathlib import Path
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage.embedded import EmbeddedStorage
path, client, *views = sys.argv[1:]
ts = time.time_ns() // 1_000_000 - 2 * 3_600_000
storage = EmbeddedStorage(Path(path), 1)
insert_events(storage, [PlayerEvent(int(client), ts + n, "watch", "vod", "v-1", view, "US", "")
                        for n, view in enumerate(views)], {"insert_deduplicate": 0})
storage.close()
"""




def _send_watches(base: str, views: list[str]) -> None:
    """One beacon per request, as the player sends them; each must be acknowledged."""
    with httpx.Client(base_url=base) as http:
        for view in views:
            body = {"event": "watch", "client_id": CLIENT, "video_id": "v-1", "type": "vod",
                    "view_id": view}
            response = http.post("/events", json=body, headers=XFF)
            assert response.status_code == 202, response.text


def _wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {DEADLINE_S} s: {what}")
        time.sleep(0.1)


def _kill_9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.chdb
@pytest.mark.slow
def test_embedded_retries_count_once_after_kill_9_and_again_past_the_horizon(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = key_token(data, CLIENT)
    views = [str(uuid.uuid4()) for _ in range(200)]
    with serving("run", data) as (base, proc):
        _send_watches(base, views)
        assert total_views(base, token) == 200
        _kill_9(proc)
    old = [str(uuid.uuid4()) for _ in range(50)]
    subprocess.run([sys.executable, "-c", STORE_OLD_WATCHES, str(data / "clickhouse"),
                    str(CLIENT), *old], check=True, capture_output=True, text=True)
    with serving("run", data) as (base, _):
        assert total_views(base, token) == 250
        _send_watches(base, views + old)
        assert total_views(base, token) == 250 + len(old)  # as documented: older than the horizon


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_through_kafka_retries_count_once_after_kill_9(tmp_path: Path,
                                                       kafka: KafkaBroker) -> None:
    data = tmp_path / "data"
    token = key_token(data, CLIENT)
    topic = f"dedup-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=2))
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": group}
    views = [str(uuid.uuid4()) for _ in range(200)]
    with serving("run", data, env=env) as (base, proc):
        _send_watches(base, views)  # acknowledged: Kafka has them
        _wait_until(lambda: total_views(base, token) == 200, "the consumer to store the views")
        _kill_9(proc)
    with serving("run", data, env=env) as (base, _):
        _send_watches(base, views)

        async def drained() -> None:
            async with Progress(kafka.bootstrap, topic, group, 2) as progress:
                await progress.drained()

        asyncio.run(drained())  # the consumer has decided on every re-sent beacon
        assert total_views(base, token) == 200
