"""The liveness guard (ingest/consumer/liveness.py): when it calls a consumer stalled, and that
a stalled consumer gets new clients and still writes every event exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.database import fresh_client_id
from tests.support.kafka import KafkaBroker
from tests.test_consumer import Progress, _consume, _counts, _expected, _produce, _views
from viewstats.core.storage import Storage
from viewstats.devtools.topics import create_topic
from viewstats.health import health_routes
from viewstats.ingest.consumer.assignment import Partition
from viewstats.ingest.consumer.kafka_clients import KafkaClients
from viewstats.ingest.consumer.kafka_consumer import Consumer
from viewstats.ingest.consumer.liveness import GroupOffsets, Liveness, Stalled
from viewstats.server import _checks

STALL_AFTER_S = 10.0
ENDS = {0: 100, 1: 50}


class ScriptDone(Exception):
    """The script has no more reads: the guard kept watching to the end."""


class Script:
    """What each check reads, one entry per check, on a clock that advances 1 s per check."""

    def __init__(self, reads: Sequence[GroupOffsets | None], storing: Sequence[bool] = ()) -> None:
        self.now = 0.0
        self._reads: Iterator[GroupOffsets | None] = iter(reads)
        self._storing = list(storing)
        self.checks = 0

    async def read(self) -> GroupOffsets | None:
        self.now += 1
        self.checks += 1
        try:
            return next(self._reads)
        except StopIteration:
            raise ScriptDone from None

    def storing(self) -> bool:
        return self.checks <= len(self._storing) and self._storing[self.checks - 1]

    def liveness(self) -> Liveness:
        return Liveness(self.read, self.storing, stall_after_s=STALL_AFTER_S, check_every_s=0,
                        clock=lambda: self.now)


def _at(committed: int | None, *, readable: bool = True, other: int = 50) -> GroupOffsets:
    """Partition 0 committed at `committed` (of 100), partition 1 at `other` (of 50)."""
    return GroupOffsets([0, 1], ENDS, {0: committed, 1: other} if readable else None)


def _watch(script: Script) -> tuple[Liveness, str | None]:
    """Run the guard over the script: the reason it raised, None if the script ran out first."""
    liveness = script.liveness()
    try:
        asyncio.run(liveness.watch())
    except Stalled as stall:
        return liveness, str(stall)
    except ScriptDone:
        return liveness, None
    raise AssertionError("watch() returned: it only ever raises")


def test_events_that_wait_while_nothing_is_committed_are_a_stall() -> None:
    liveness, stall = _watch(Script([_at(10)] * 30))
    assert stall == ("partitions [0] of this member: 90 events wait and no offset was committed "
                     "for 10 s while the broker answers")
    assert liveness.stalled == stall


def test_commits_that_move_are_progress_however_much_waits() -> None:
    assert _watch(Script([_at(n) for n in range(30)]))[1] is None


def test_one_partition_that_stands_still_is_a_stall_while_another_moves() -> None:
    # As a partition the writer gave up and the group never revoked would.
    assert _watch(Script([_at(10, other=n % 50) for n in range(30)]))[1] is not None


def test_nothing_waiting_is_no_stall_however_long_nothing_moves() -> None:
    assert _watch(Script([_at(100)] * 30))[1] is None


def test_a_broker_that_does_not_answer_is_an_outage_not_a_stall() -> None:
    # 20 s away, then the broker answers and nothing moves: the 10 s count from its return.
    script = Script([None] * 20 + [_at(10)] * 30)
    assert _watch(script)[1] is not None
    assert script.checks == 20 + 11


def test_committed_offsets_that_cannot_be_read_count_as_not_moving() -> None:
    # The log end answers, the group's coordinator does not: no coordinator is a stall too.
    assert _watch(Script([_at(10)] + [_at(None, readable=False)] * 30))[1] is not None


def test_a_store_in_progress_is_the_database_not_a_kafka_stall() -> None:
    assert _watch(Script([_at(10)] * 30, storing=[True] * 30))[1] is None


def test_a_stall_is_reported_until_commits_move_again() -> None:
    # The first watch finds the stall; the next clients' watch reads the same offsets once
    # (still stalled), then moved ones.
    script = Script([_at(10)] * 11 + [_at(10), _at(11)])
    liveness = script.liveness()
    with pytest.raises(Stalled):
        asyncio.run(liveness.watch())
    seen = []

    async def read() -> GroupOffsets | None:
        offsets = await script.read()
        seen.append(liveness.stalled is not None)
        return offsets

    liveness._read = read
    with pytest.raises(ScriptDone):
        asyncio.run(liveness.watch())
    assert seen == [True, True]  # before each of the two reads
    assert liveness.stalled is None


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_consumer_whose_clients_stall_gets_new_ones_and_counts_every_view_once(
        kafka: KafkaBroker, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first clients' commits never return, as in the stall after a broker outage: the
    writer waits on them for good and nothing more is committed. The guard sees the group's
    offsets stand still while events wait, replaces the clients, and the new ones commit."""
    topic, group = f"stall-{fresh_client_id()}", f"g-stall-{fresh_client_id()}"
    client = fresh_client_id()
    events = _views(client, 600)
    stalled_clients: list[KafkaClients] = []
    real_commit = KafkaClients.commit

    async def commit(self: KafkaClients, partition: Partition, offset: int) -> None:
        if not stalled_clients or stalled_clients[0] is self:
            stalled_clients[:1] = [self]
            await asyncio.Event().wait()  # never
        await real_commit(self, partition, offset)

    monkeypatch.setattr(KafkaClients, "commit", commit)
    reported: list[str] = []

    async def scenario() -> None:
        await create_topic(kafka.bootstrap, topic, partitions=3)
        await _produce(kafka.bootstrap, topic, events)
        consumer = Consumer(storage, kafka.bootstrap, topic=topic, group_id=group,
                            batch_rows=500, stall_after_s=4)

        async def drained() -> None:
            async with Progress(kafka.bootstrap, topic, group, 3) as progress:
                async with asyncio.timeout(90):
                    while await progress.lag() > 0:
                        try:
                            await consumer.check_progress()
                        except Stalled as stall:
                            reported.append(str(stall))
                        await asyncio.sleep(0.05)

        await _consume(consumer, drained)

    asyncio.run(scenario())
    assert len(stalled_clients) == 1
    assert reported, "/readyz's consumer check never said it was stalled"
    assert _counts(storage, client) == _expected(events)


@pytest.mark.chdb
def test_readyz_names_a_stalled_consumer(storage: Storage) -> None:
    """`run` and `consumer` serve these checks: a stalled consumer is the failing one."""
    consumer = Consumer(storage, "127.0.0.1:9", topic="t", group_id="g")
    app = Starlette(routes=health_routes(_checks(storage, consumer)))
    with TestClient(app) as http:
        assert "consumer" not in http.get("/readyz").json().get("failing", {})
        consumer._liveness.stalled = "90 events wait and no offset was committed for 30 s"
        answer = http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["failing"]["consumer"] == "Stalled"
