"""The test broker is a real Kafka, and only marked tests can reach it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.kafka import MARKER, USES, KafkaBroker
from tests.support.markers import missing_marker_message
from viewstats.devtools.topics import create_topic

REPO_ROOT = Path(__file__).resolve().parent.parent
COUNT = 1000
KEYS = 37
CONSUME_SECONDS = 60.0


async def _produce(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sends = [
            await producer.send(topic, f"view-{i}".encode(), key=f"video-{i % KEYS}".encode())
            for i in range(COUNT)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str) -> list[tuple[int, str, str]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[int, str, str]] = []
    try:
        # Stop on a deadline rather than hang: a short count then fails the assert below.
        deadline = time.monotonic() + CONSUME_SECONDS
        while len(got) < COUNT and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                got += [(tp.partition, r.key.decode(), r.value.decode()) for r in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


@pytest.mark.kafka
def test_produce_and_consume_1000_messages(kafka: KafkaBroker) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[tuple[int, str, str]]:
        await create_topic(kafka.bootstrap, topic, partitions=3)
        await _produce(kafka.bootstrap, topic)
        return await _consume(kafka.bootstrap, topic)

    got = asyncio.run(scenario())

    assert len(got) == COUNT
    assert sorted(v for _, _, v in got) == sorted(f"view-{i}" for i in range(COUNT))
    assert {p for p, _, _ in got} == {0, 1, 2}
    by_key: dict[str, list[int]] = defaultdict(list)
    for _, key, value in got:
        assert int(value.removeprefix("view-")) % KEYS == int(key.removeprefix("video-"))
        by_key[key].append(int(value.removeprefix("view-")))
    # One key lives in one partition, whose order Kafka keeps.
    assert all(seq == sorted(seq) for seq in by_key.values())
    assert len({(p, k) for p, k, _ in got}) == KEYS


def test_unmarked_test_cannot_reach_kafka(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    kafka: real broker\n")
    (tmp_path / "test_unmarked.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def indirect(kafka_broker):\n"
        "    return kafka_broker\n\n"
        "def test_uses_kafka(kafka):\n    pass\n\n"
        "def test_uses_session_broker(kafka_broker):\n    pass\n\n"
        "def test_uses_it_indirectly(indirect):\n    pass\n\n"
        "def test_without_kafka():\n    pass\n"
    )
    basetemp = tmp_path / "basetemp"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.support.kafka", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*cmd, "-c", str(tmp_path / "pytest.ini"), f"--basetemp={basetemp}", "-q", "-rE"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 passed, 3 errors" in out, out
    for name in ("test_uses_kafka", "test_uses_session_broker", "test_uses_it_indirectly"):
        assert missing_marker_message(f"test_unmarked.py::{name}", MARKER, USES) in out, out
    # Refused before the session fixture ran: no broker was started for them.
    assert not list(basetemp.glob("kafka*")), out
