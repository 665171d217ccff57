"""Kafka topics made ready for producers, for the tests and the benchmarks."""

from __future__ import annotations

from viewstats.ingest.topic import ensure_topic


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """A topic of `partitions` partitions (replication 1), each with a leader, as the roles
    make theirs at start; RuntimeError when it exists with another count.

    Waiting for leaders matters: CreateTopics returns once the controller accepted it, and a
    producer that races the leader election gets UNKNOWN_TOPIC_OR_PARTITION.
    """
    if (count := await ensure_topic(bootstrap, name, partitions)) != partitions:
        raise RuntimeError(f"topic {name!r} exists with {count} partitions, not {partitions}")
