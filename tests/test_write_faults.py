"""Nothing is acknowledged that the engine did not store, under real faults.

A read-only bind mount over the data path and a full tmpfs under it, while beacons stream into
a real `viewstats run` (embedded, and through Kafka to its consumer), and under a consumer
writing to a server (the test ClickHouse endpoint) over HTTP. While writes fail the collector
answers 503 with Retry-After and /readyz is not ready; once the fault clears the process
recovers by itself, and every view answered 202 is counted exactly once.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.api import watch
from tests.support.database import fresh_client_id
from tests.support.faults import BeaconStream, full, tmpfs
from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, serving, total_views
from tests.support.server_mode import clickhouse_url
from viewstats.core.events import PlayerEvent, insert_events
from viewstats.core.storage import Storage, StorageError
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.core.storage.embedded import EmbeddedStorage
from viewstats.devtools.mounts import read_only
from viewstats.devtools.topics import create_topic
from viewstats.ingest import wire

CLIENT = 17
DEADLINE_S = 90.0
FAILING = "writes to the database fail"
RECOVERED = "writes to the database succeed again"


def wait_until(check: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def _status(url: str) -> int:
    return httpx.get(url, timeout=10).status_code


def _metric(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])




@pytest.mark.chdb
def test_a_column_the_table_lacks_is_refused_not_dropped(storage: Storage) -> None:
    with pytest.raises(StorageError, match="nope"):
        storage.insert("write_probe", {"at": [1_700_000_000_000], "nope": [1]}, millis=("at",))


@pytest.mark.chdb
@pytest.mark.faults
def test_a_write_the_engine_cannot_store_raises(storage: Storage, fault_root: None) -> None:
    """Pins the engine: on a read-only data path a write raises, through both calls we use.

    (chDB's streaming inserter did not: it returned, reporting rows written, and lost them.)
    """
    client = fresh_client_id()
    assert isinstance(storage, EmbeddedStorage)
    with read_only(storage.path):
        with pytest.raises(StorageError, match="Read-only file system"):
            storage.command("INSERT INTO write_probe (at) VALUES (now64(3))")
        with pytest.raises(StorageError, match="Read-only file system"):
            insert_events(storage, [watch(client, 1_700_000_000_000, "AU", 1)])
        assert storage.health.failing
    # The probe notices the fault is gone without any write of ours.
    wait_until(lambda: not storage.health.failing, "the write probe to succeed")
    assert storage.query("SELECT count() FROM player_events WHERE client_id = {c:UInt32}",
                         {"c": client}) == [(0,)]


def _one_burst_logged(log: Path) -> None:
    lines = log.read_text().splitlines()
    assert sum(FAILING in line for line in lines) == 1, "one log line per failure burst"
    assert sum(RECOVERED in line for line in lines) == 1


def _kafka_env(bootstrap: str) -> dict[str, str]:
    """The environment of a process on a topic (and group) of its own, created here."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(bootstrap, topic, partitions=2))
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "VIEWSTATS_TOPIC": topic,
            "VIEWSTATS_CONSUMER_GROUP": f"g-{topic}"}


def _ride_out(base: str, token: str, log: Path,
              fault: Callable[[], AbstractContextManager[object]]) -> None:
    """Stream beacons through a fault entered by `fault()`; check 503s, readiness, recovery.

    Refused beacons are resent, as the player does: an insert that failed part way (the disk
    filled while the rollups wrote) is settled later with its rows, so a refused view may count,
    and then once, like every acknowledged one."""
    with BeaconStream(base, CLIENT, resend_refused=True) as stream:
        wait_until(lambda: stream.counts()[0] >= 30, "beacons acknowledged before the fault")
        with fault():
            wait_until(lambda: stream.counts()[1] >= 20, "503s while writes fail")
            assert _status(base + "/readyz") == 503
            assert _metric(base, "viewstats_writes_failing") == 1
        wait_until(lambda: _status(base + "/readyz") == 200, "/readyz to recover")
        recovered = stream.counts()[0]
        wait_until(lambda: stream.counts()[0] >= recovered + 30, "202s after recovery")
    assert not stream.unexpected, stream.unexpected[:5]
    assert _metric(base, "viewstats_writes_failing") == 0
    assert _metric(base, "viewstats_write_failures_total") >= 1
    # Every 202 counted once, the refused views among them once they were resent.
    wait_until(lambda: total_views(base, token) >= len(stream.acked), "acknowledged views")
    assert total_views(base, token) == len(stream.acked)
    _one_burst_logged(log)


FAULTS = ("read_only", "full_disk")


@contextmanager
def _data_root(tmp_path: Path, fault: str) -> Iterator[Path]:
    """Where the database lives: on a small tmpfs of its own when the disk is to fill up."""
    if fault == "full_disk":
        with tmpfs(tmp_path / "data", size_mb=256) as root:
            yield root
    else:
        (tmp_path / "data").mkdir()
        yield tmp_path / "data"


def _fault(fault: str, root: Path, database: Path) -> AbstractContextManager[None]:
    return read_only(database) if fault == "read_only" else full(root)


@pytest.mark.chdb
@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_embedded_a_faulty_disk_gets_503s_and_loses_nothing(
        tmp_path: Path, fault_root: None, fault: str) -> None:
    log = tmp_path / "run.log"
    with _data_root(tmp_path, fault) as data:
        token = key_token(data, CLIENT)
        with serving("run", data, log=log) as (base, _):
            _ride_out(base, token, log, lambda: _fault(fault, data, data / "clickhouse"))


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_through_kafka_the_consumer_commits_nothing_it_could_not_store(
        tmp_path: Path, kafka: KafkaBroker, fault_root: None, fault: str) -> None:
    """The collector acknowledges once Kafka has an event; the consumer must then store it,
    retrying through the fault rather than committing past it."""
    log = tmp_path / "run.log"
    env = _kafka_env(kafka.bootstrap)
    with _data_root(tmp_path, fault) as data:
        token = key_token(data, CLIENT)
        with serving("run", data, env=env, log=log) as (base, _):
            with BeaconStream(base, CLIENT) as stream:
                wait_until(lambda: total_views(base, token) >= 30, "views before the fault")
                with _fault(fault, data, data / "clickhouse"):
                    wait_until(lambda: _status(base + "/readyz") == 503, "/readyz to fail")
                    during = stream.counts()[0]
                    wait_until(lambda: stream.counts()[0] >= during + 30, "202s from Kafka")
                wait_until(lambda: _status(base + "/readyz") == 200, "/readyz to recover")
            wait_until(lambda: total_views(base, token) >= len(stream.acked), "every acked view")
            assert total_views(base, token) == len(stream.acked)
            assert not stream.unexpected, stream.unexpected[:5]
    _one_burst_logged(log)


def _event(client: int, view: int) -> bytes:
    return wire.encode(PlayerEvent(client, int(time.time() * 1000), "watch", "vod", "v-1",
                                   f"00000000-0000-4000-8000-{view:012x}", "AU", ""))


async def _produce(bootstrap: str, topic: str, client: int, views: range) -> None:
    from aiokafka import AIOKafkaProducer
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for view in views:
            await producer.send(topic, _event(client, view), key=str(view).encode())
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.faults
@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_server_mode_the_consumer_rides_out_a_faulty_server_disk(
        tmp_path: Path, kafka: KafkaBroker, fault_root: None, fault: str) -> None:
    """`viewstats consumer` writing over HTTP to a ClickHouse endpoint whose disk turns
    read-only or fills up: the server refuses, the consumer retries, every event lands once."""
    client = fresh_client_id()
    log = tmp_path / "consumer.log"
    env = _kafka_env(kafka.bootstrap)
    topic = env["VIEWSTATS_TOPIC"]
    with _data_root(tmp_path, fault) as root, \
            clickhouse_url(root / "db", tmp_path / "endpoint.log") as url:
        db_path = root / "db"
        env["CLICKHOUSE_URL"] = url
        reader = ServerStorage(url)

        def stored() -> int:
            rows = reader.query("SELECT count() FROM player_events WHERE client_id = "
                                "{c:UInt32}", {"c": client})
            return int(rows[0][0])

        try:
            with serving("consumer", tmp_path / "consumer-data", env=env, log=log) as (base, _):
                asyncio.run(_produce(kafka.bootstrap, topic, client, range(0, 500)))
                wait_until(lambda: stored() == 500, "the first 500 events")
                with _fault(fault, root, db_path):
                    asyncio.run(_produce(kafka.bootstrap, topic, client, range(500, 1000)))
                    wait_until(lambda: _status(base + "/readyz") == 503, "/readyz to fail")
                    assert stored() == 500
                wait_until(lambda: stored() >= 1000, "the events produced during the fault")
                wait_until(lambda: _status(base + "/readyz") == 200, "/readyz to recover")
                assert stored() == 1000
        finally:
            reader.close()
    _one_burst_logged(log)
