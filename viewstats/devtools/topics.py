"""Kafka topics made ready for producers, for the tests and the benchmarks."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

CREATE_TOPIC_TIMEOUT = 30.0


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
