"""`--workers N`: N processes serve one port, as operators run them (architecture §8).

Real processes throughout: `viewstats collector --workers 2` in Kafka mode against the session's
broker and the test ClickHouse endpoint, driven over HTTP, stopped and killed with real signals.
Which worker served what is read from each worker's own metric file, the files /metrics sums.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.geoip_fixture import shared_test_mmdb
from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, total_views, viewstats
from tests.support.server_mode import clickhouse_url
from viewstats.devtools.processes import (
    VIEWSTATS,
    free_port,
    shared_viewer_key,
    stop,
    wait_for_http,
)
from viewstats.devtools.topics import create_topic
from viewstats.ingest import wire

WITHIN = 60.0  # seconds for anything to happen that should (never a timing assertion)
PATIENT = httpx.Timeout(30.0)  # the machine may be loaded; an answer is what is checked
STARTED = re.compile(r"worker (\d+) started: pid (\d+)")
ACCEPTED = "viewstats_events_accepted_total"
SERVING = "Application startup complete."  # uvicorn's line, once per worker
NO_SERVICES = {"CLICKHOUSE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""}


def test_run_on_the_embedded_database_refuses_workers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused = viewstats("run", "--workers", "2", "--data-dir", str(data), env=NO_SERVICES,
                        check=False)
    assert refused.returncode == 2
    assert "--workers 2: every worker would open the embedded database" in refused.stderr
    assert "one process owns it at a time; set CLICKHOUSE_URL" in refused.stderr
    assert not data.exists()  # refused before anything was opened
    usage = " ".join(viewstats("run", "--help").stdout.split())
    assert "on the embedded database (the default) one process owns the data path" in usage


def test_collector_workers_without_kafka_refuse(tmp_path: Path) -> None:
    # Each would drop retries by a window of its own: a retry to another would count twice.
    refused = viewstats("collector", "--workers", "3", "--data-dir", str(tmp_path),
                        env={**NO_SERVICES, "CLICKHOUSE_URL": "http://127.0.0.1:9"},
                        check=False)
    assert refused.returncode == 2
    assert "--workers 3: without KAFKA_BOOTSTRAP_SERVERS" in refused.stderr


def test_the_consumer_has_no_workers_flag() -> None:
    refused = viewstats("consumer", "--workers", "2", check=False)
    assert refused.returncode == 2
    assert "unrecognized arguments: --workers 2" in refused.stderr


def test_workers_refuse_a_port_another_group_listens_on(tmp_path: Path) -> None:
    # SO_REUSEPORT alone would let a second supervisor join the first one's port unnoticed.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        refused = viewstats("collector", "--workers", "2", "--port", str(port),
                            "--data-dir", str(tmp_path), check=False,
                            env={"CLICKHOUSE_URL": "http://127.0.0.1:9",
                                 "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    assert refused.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in \
        refused.stderr


@dataclass(frozen=True)
class Collectors:
    base: str
    proc: subprocess.Popen[bytes]
    topic: str
    metrics: Path
    log: Path

    def worker_pids(self) -> list[int]:
        """Every worker the supervisor started, in order, from its log."""
        return [int(pid) for _, pid in STARTED.findall(self.log.read_text())]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("workers-db")
    with clickhouse_url(folder / "clickhouse", folder / "clickhouse.log") as url:
        yield url


@contextmanager
def _workers(role: str, env: dict[str, str], folder: Path) -> Iterator[Collectors]:
    """`viewstats <role> --workers 2` until the block ends (SIGTERM, then wait)."""
    metrics, log, port = folder / "metrics", folder / f"{role}.log", free_port()
    metrics.mkdir()  # prometheus_client's rule: the directory exists before any process starts
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*VIEWSTATS, role, "--workers", "2", "--port", str(port),
             "--data-dir", str(folder / "data")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "GEOIP_DB": str(shared_test_mmdb()),
                 "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                 "VIEWER_KEY_FILE": str(shared_viewer_key(folder)), **env})
    served = Collectors(f"http://127.0.0.1:{port}", proc, env["VIEWSTATS_TOPIC"], metrics, log)
    try:
        wait_for_http(served.base + "/healthz", proc.poll)
        _wait_until(lambda: served.log.read_text().count(SERVING) == 2, "two workers serving")
        yield served
    finally:
        stop(proc, timeout=WITHIN)


def _kafka_env(bootstrap: str, database: str) -> dict[str, str]:
    topic = f"player-events-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(bootstrap, topic, partitions=4))
    return {"CLICKHOUSE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "VIEWSTATS_TOPIC": topic, "VIEWSTATS_CONSUMER_GROUP": f"viewstats-{topic}"}


@pytest.fixture
def collectors(kafka: KafkaBroker, database: str, tmp_path: Path) -> Iterator[Collectors]:
    with _workers("collector", _kafka_env(kafka.bootstrap, database), tmp_path) as served:
        yield served


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():
        assert time.monotonic() < deadline, f"not within {WITHIN:g} s: {what}"
        time.sleep(0.1)


def _beacon(view_id: str) -> list[dict[str, object]]:
    return [{"event": "watch", "client_id": 41, "video_id": "v-1", "type": "vod",
             "view_id": view_id}]


def _send_each_on_a_new_connection(base: str, count: int) -> list[str]:
    """`count` beacons, each on a connection of its own (the kernel places connections);
    returns their view ids, every one acknowledged."""
    sent = []
    for _ in range(count):
        view_id = str(uuid.uuid4())
        response = httpx.post(base + "/events", json=_beacon(view_id), timeout=PATIENT)
        assert response.status_code == 202, response.text
        sent.append(view_id)
    return sent


def _accepted_by(metrics: Path, pid: int) -> float:
    """Events the worker `pid` accepted, from its own counter file alone."""
    with tempfile.TemporaryDirectory() as alone:
        shutil.copy(metrics / f"counter_{pid}.db", alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
        return registry.get_sample_value(ACCEPTED) or 0.0


def _served_metric(base: str, name: str = ACCEPTED, **labels: str) -> float:
    text = httpx.get(base + "/metrics", timeout=PATIENT).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def _view_ids_in(bootstrap: str, topic: str) -> set[str]:
    async def read() -> set[str]:
        reader = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                  auto_offset_reset="earliest")
        await reader.start()
        try:
            ends = await reader.end_offsets(list(reader.assignment()))
            got: list[str] = []
            async with asyncio.timeout(WITHIN):
                while len(got) < sum(ends.values()):
                    for records in (await reader.getmany(timeout_ms=500)).values():
                        got += [wire.decode(record.value).view_id for record in records]
            return set(got)
        finally:
            await reader.stop()
    return asyncio.run(read())


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (an exited orphan no one reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_two_workers_share_the_port_and_their_metrics(collectors: Collectors,
                                                      kafka: KafkaBroker) -> None:
    sent = _send_each_on_a_new_connection(collectors.base, 60)
    pids = collectors.worker_pids()
    by_worker = {pid: _accepted_by(collectors.metrics, pid) for pid in pids}
    assert all(count > 0 for count in by_worker.values()), by_worker  # both took beacons
    assert sum(by_worker.values()) == len(sent)
    assert _served_metric(collectors.base) == len(sent)  # whichever worker answers /metrics
    assert _served_metric(collectors.base, "viewstats_beacon_seconds_count",
                          status="202") == len(sent)  # histograms are summed too
    assert _view_ids_in(kafka.bootstrap, collectors.topic) == set(sent)


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_a_killed_worker_is_started_again(collectors: Collectors) -> None:
    first, second = collectors.worker_pids()
    os.kill(first, signal.SIGKILL)
    _wait_until(lambda: len(collectors.worker_pids()) == 3, "a third worker started")
    replacement = collectors.worker_pids()[2]
    assert "exited with -9; starting it again" in collectors.log.read_text()
    # Connections the kernel gives the dead worker's slot wait in its backlog meanwhile.
    _send_each_on_a_new_connection(collectors.base, 40)
    assert collectors.proc.poll() is None
    assert all(_alive(pid) for pid in (second, replacement))
    assert _accepted_by(collectors.metrics, replacement) > 0


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_sigterm_stops_every_worker_and_loses_nothing_acknowledged(
        collectors: Collectors, kafka: KafkaBroker) -> None:
    acknowledged: list[str] = []
    stopping = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=PATIENT) as http:
            while not stopping.is_set():
                view_id = str(uuid.uuid4())
                try:
                    response = http.post(collectors.base + "/events", json=_beacon(view_id))
                except httpx.TransportError:  # refused or cut off: not acknowledged
                    continue
                if response.status_code == 202:
                    acknowledged.append(view_id)

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    try:
        _wait_until(lambda: len(acknowledged) >= 200, "200 beacons acknowledged")
        collectors.proc.send_signal(signal.SIGTERM)
        code = collectors.proc.wait(timeout=WITHIN)
    finally:
        stopping.set()
        for sender in senders:
            sender.join()
    assert code == 0
    assert "workers stopped, exit codes [0, 0]" in collectors.log.read_text()
    assert not any(_alive(pid) for pid in collectors.worker_pids())
    assert set(acknowledged) <= _view_ids_in(kafka.bootstrap, collectors.topic)


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_run_with_kafka_and_a_server_counts_each_view_once_across_workers(
        kafka: KafkaBroker, database: str, tmp_path: Path) -> None:
    # Each worker has its own consumer in the group; a retry reaching the other worker is
    # dropped by the consumer owning the view's partition.
    with _workers("run", _kafka_env(kafka.bootstrap, database), tmp_path) as run:
        token = key_token(tmp_path / "data", 43)
        views = [str(uuid.uuid4()) for _ in range(30)]
        for view_id in [*views, *views[:10]]:  # ten retried, on connections of their own
            body = [{**_beacon(view_id)[0], "client_id": 43, "event": event}
                    for event in ("init", "start", "watch")]
            assert httpx.post(run.base + "/events", json=body, timeout=PATIENT).status_code == 202
        _wait_until(lambda: total_views(run.base, token) >= len(views), "views counted")
        assert total_views(run.base, token) == len(views)
        log = run.log.read_text()  # the supervisor migrated, before any worker could race
        assert log.index("applied migration 0002_player_events") < log.index("worker 0 started")
    assert run.proc.returncode == 0


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_workers_stop_when_their_supervisor_is_killed(collectors: Collectors) -> None:
    pids = collectors.worker_pids()
    collectors.proc.kill()
    collectors.proc.wait()
    _wait_until(lambda: not any(_alive(pid) for pid in pids), "the orphaned workers stopped")
    log = collectors.log.read_text()
    assert log.count("Application shutdown complete.") == 2  # each drained, as on SIGTERM
