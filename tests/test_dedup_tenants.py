"""A stranger's beacon with another tenant's view_id changes nothing for that tenant (issue 19,
architecture §3). The collector takes beacons from anyone, and the player sends its view_id in
`init` and `start` seconds before `watch`, so whoever sees them could send a `watch` of that
view first. The dedup window is keyed by (client_id, view_id, event): in the embedded batcher,
in the consumer, and in the refill after a restart. Over HTTP into real `viewstats run`
processes, embedded and through a real broker; counts are read from the served API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, serving, total_views
from tests.test_consumer import Progress
from viewstats.devtools.topics import create_topic

pytestmark = [pytest.mark.chdb, pytest.mark.slow]

TENANT, STRANGER, OTHER = 17, 18, 19
PARTITIONS = 2
XFF = {"X-Forwarded-For": "8.8.8.8"}  # US in the shared test GeoIP database


@dataclass(frozen=True)
class WritePath:
    """How `run` writes: embedded (a 202 means stored), or through Kafka to its consumer."""

    env: dict[str, str]
    kafka: KafkaBroker | None = None

    def settle(self) -> None:
        """Until every acknowledged beacon is decided on (stored or dropped as a duplicate)."""
        if self.kafka is None:
            return
        bootstrap, topic = self.kafka.bootstrap, self.env["VIEWSTATS_TOPIC"]

        async def drained() -> None:
            async with Progress(bootstrap, topic, self.env["VIEWSTATS_CONSUMER_GROUP"],
                                PARTITIONS) as progress:
                await progress.drained()

        asyncio.run(drained())


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def write_path(request: pytest.FixtureRequest) -> Iterator[WritePath]:
    if request.param == "embedded":
        yield WritePath({})
        return
    kafka: KafkaBroker = request.getfixturevalue("kafka")
    topic = f"tenants-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=PARTITIONS))
    yield WritePath({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "VIEWSTATS_TOPIC": topic,
                     "VIEWSTATS_CONSUMER_GROUP": f"g-{topic}"}, kafka)


def _watch(client_id: int, view_id: str) -> dict[str, object]:
    return {"event": "watch", "client_id": client_id, "video_id": "x", "type": "vod",
            "view_id": view_id}


def _post(http: httpx.Client, *beacons: dict[str, object]) -> None:
    response = http.post("/events", json=list(beacons), headers=XFF)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(beacons)}


def _views(base: str, tokens: dict[int, str]) -> dict[int, int]:
    return {client: total_views(base, token) for client, token in tokens.items()}


def test_a_strangers_beacon_with_a_tenants_view_id_changes_nothing_for_the_tenant(
        tmp_path: Path, write_path: WritePath) -> None:
    data = tmp_path / "data"
    tokens = {client: key_token(data, client) for client in (TENANT, STRANGER)}
    sniffed, seen_later, in_one_request = (str(uuid.uuid4()) for _ in range(3))
    with serving("run", data, env=write_path.env) as (base, _), \
            httpx.Client(base_url=base) as http:
        # The request of the issue: the stranger's watch first, then the tenant's, retried.
        _post(http, _watch(STRANGER, sniffed))
        _post(http, _watch(TENANT, sniffed))
        _post(http, _watch(TENANT, sniffed))
        # The stranger after the tenant: its own view, once however often it is sent.
        _post(http, _watch(TENANT, seen_later))
        _post(http, _watch(STRANGER, seen_later))
        _post(http, _watch(STRANGER, seen_later))
        # Both in one request, so in one batch of the writer.
        _post(http, _watch(TENANT, in_one_request), _watch(STRANGER, in_one_request),
              _watch(TENANT, in_one_request))
        write_path.settle()
        assert _views(base, tokens) == {TENANT: 3, STRANGER: 3}


def test_after_a_restart_the_refilled_window_drops_a_tenants_retry_and_nobody_elses(
        tmp_path: Path, write_path: WritePath) -> None:
    """The window a restarted writer refills from player_events is keyed by client too: what
    the stranger stored with the tenant's next view_id does not suppress that view, and what
    the tenant stored suppresses only the tenant's own retry."""
    data = tmp_path / "data"
    tokens = {client: key_token(data, client) for client in (TENANT, STRANGER, OTHER)}
    stored, strangers_pick = str(uuid.uuid4()), str(uuid.uuid4())
    with serving("run", data, env=write_path.env) as (base, _), \
            httpx.Client(base_url=base) as http:
        _post(http, _watch(TENANT, stored))
        _post(http, _watch(STRANGER, strangers_pick))
        write_path.settle()
        assert _views(base, tokens) == {TENANT: 1, STRANGER: 1, OTHER: 0}
    with serving("run", data, env=write_path.env) as (base, _), \
            httpx.Client(base_url=base) as http:
        _post(http, _watch(TENANT, stored))  # the player's retry: still a duplicate
        _post(http, _watch(TENANT, strangers_pick))
        _post(http, _watch(OTHER, stored))
        write_path.settle()
        assert _views(base, tokens) == {TENANT: 2, STRANGER: 1, OTHER: 1}
