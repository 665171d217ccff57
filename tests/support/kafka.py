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

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.markers import require_marker
from viewstats.devtools.kafka_broker import KAFKA_VERSION, ensure_jars, log_tail, running_broker

# Re-exported: the Kafka tests take it from here, beside the fixture.

MARKER = "kafka"
GUARDED_FIXTURES = frozenset({"kafka", "kafka_broker"})


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
    log_dir = tmp_path_factory.mktemp("kafka")
    start = time.monotonic()
    with ExitStack() as stack:
        try:
            bootstrap = stack.enter_context(running_broker(log_dir))
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(
                f"Kafka {KAFKA_VERSION} did not start: {exc}\n{log_tail(log_dir)}", pytrace=False
            )
        yield KafkaBroker(bootstrap, log_dir, time.monotonic() - start)


@pytest.fixture
def kafka(request: pytest.FixtureRequest) -> KafkaBroker:
    """The session's broker, for tests marked `@pytest.mark.kafka` only."""
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker
