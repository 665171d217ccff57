"""The events topic made ready before a process uses it (architecture §5).

A process that only subscribed to a topic nobody had created yet waited for aiokafka's
metadata refresh before it was assigned anything, and a topic made by a broker's
auto-creation gets the broker's partition count, not the one the consumers were sized for.
So `run`, `collector` and `consumer` create the topic at start, with the configured
partitions, and wait until every partition has a leader.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
_POLL_S = 0.1


def dead_letter_topic(topic: str) -> str:
    """Where the consumer puts what it cannot decode, beside `topic`."""
    return f"{topic}-dlq"


async def ensure_topic(bootstrap: str, name: str, partitions: int,
                       replication: int = 1) -> int:
    """Create `name` unless it exists, wait until each partition has a leader; its partitions.

    An existing topic is left as it is, with a warning when its partition count differs:
    adding partitions would move views to other partitions (see dedup.py). Raises the
    broker's error when it refuses to create the topic, TimeoutError after READY_TIMEOUT_S.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            # Created before it is described: describing asks for metadata, which a broker
            # with auto-creation answers by making the topic with its own partition count.
            response = await admin.create_topics([NewTopic(name, partitions, replication)])
            for _, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise for_code(code)(f"creating topic {name!r}")
            while True:  # polled: the admin client has no call to await the leaders
                if (count := await _partitions_with_leaders(admin, name)) is not None:
                    break
                await asyncio.sleep(_POLL_S)
    finally:
        await admin.close()
    if count != partitions:
        log.warning("topic %s has %d partitions, not the %d configured; it is left as it is",
                    name, count, partitions)
    return count


async def _partitions_with_leaders(admin: AIOKafkaAdminClient, name: str) -> int | None:
    """The topic's partition count once each has a leader, else None."""
    (topic,) = await admin.describe_topics([name])
    parts = topic["partitions"]
    ready = topic["error_code"] == 0 and parts and all(p["leader"] >= 0 for p in parts)
    return len(parts) if ready else None
