"""Pytest plugin: one real Kafka broker per test session, for `@pytest.mark.kafka` tests only.

Load it with `pytest_plugins = ["tests.support.kafka"]` (or `-p tests.support.kafka`), then:

    @pytest.mark.kafka
    def test_x(kafka: KafkaBroker) -> None:
        asyncio.run(create_topic(kafka.bootstrap, "views", partitions=3))

Project rule: a test without the marker cannot reach the service. Any test whose fixture
closure includes `kafka` or `kafka_broker` but that lacks the marker errors at setup,
before the broker is started for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from scripts.kafka_broker import (
    KAFKA_VERSION,
    ensure_jars,
    free_ports,
    log_tail,
    start_broker,
    stop_broker,
    wait_until_ready,
)
from tests.support.markers import require_marker

MARKER = "kafka"
GUARDED_FIXTURES = frozenset({"kafka", "kafka_broker"})
# Cold JVM + storage format + KRaft election take ~4-5 s here; the slack covers a
# loaded 2-core CI machine, not a normal start.
READY_TIMEOUT = 120.0
CREATE_TOPIC_TIMEOUT = 30.0


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap: str
    log_dir: Path
    startup_seconds: float


USES = "uses the Kafka broker"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Also covers tests reaching the session fixture directly or through another fixture,
    # and fails them before it would start the service.
    require_marker(item, MARKER, GUARDED_FIXTURES, USES)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    ensure_jars()  # before the clock: a cold cache means a Maven download
    (port,) = free_ports(1)
    bootstrap = f"127.0.0.1:{port}"
    log_dir = tmp_path_factory.mktemp("kafka")
    start = time.monotonic()
    proc = start_broker(port, log_dir)
    try:
        wait_until_ready(bootstrap, READY_TIMEOUT, proc)
    except (RuntimeError, TimeoutError) as exc:
        stop_broker(proc)
        pytest.fail(
            f"Kafka {KAFKA_VERSION} did not start: {exc}\n{log_tail(log_dir)}", pytrace=False
        )
    try:
        yield KafkaBroker(bootstrap, log_dir, time.monotonic() - start)
    finally:
        stop_broker(proc)


@pytest.fixture
def kafka(request: pytest.FixtureRequest) -> KafkaBroker:
    """The session's broker, for tests marked `@pytest.mark.kafka` only."""
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create a topic (replication 1) and wait until every partition has a leader.

    Waiting matters: CreateTopics returns once the controller accepted it, and a
    producer that races the leader election gets UNKNOWN_TOPIC_OR_PARTITION.
    Raises TimeoutError after CREATE_TOPIC_TIMEOUT seconds.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(CREATE_TOPIC_TIMEOUT):
            response = await admin.create_topics([NewTopic(name, partitions, 1)])
            errors = [(t[0], t[1]) for t in response.topic_errors if t[1] != 0]
            if errors:
                raise RuntimeError(f"create_topics({name!r}) failed: {errors}")
            # Polled: the admin client has no "wait for leaders" call to await.
            while True:
                if await _has_leaders(admin, name, partitions):
                    return
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _has_leaders(admin: AIOKafkaAdminClient, name: str, partitions: int) -> bool:
    (topic,) = await admin.describe_topics([name])
    parts = topic["partitions"]
    return (
        topic["error_code"] == 0
        and len(parts) == partitions
        and all(p["leader"] >= 0 for p in parts)
    )
