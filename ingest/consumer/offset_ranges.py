"""The consumer's record of batch offset ranges, `consumer_batches` (architecture §5).

A range is recorded before its rows are inserted. A consumer that takes a partition over after a
crash or a rebalance reads the range starting at the committed offset and cuts its first batch at
exactly that range, so the replay carries the same deduplication token and ClickHouse drops the
block if the first attempt had already inserted it.
"""

from __future__ import annotations

from viewstats.core.storage import QuerySettings, Storage

TABLE = "consumer_batches"


def insert_settings(topic: str, partition: int, first: int, last: int) -> QuerySettings:
    """Settings that make inserting the batch [first, last] idempotent, MVs included."""
    return {
        "insert_deduplication_token": f"{topic}:{partition}:{first}-{last}",
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "async_insert": 0,
    }


def record_range(storage: Storage, topic: str, partition: int, first: int, last: int) -> None:
    storage.insert(TABLE, {"topic": [topic], "partition": [partition],
                           "first_offset": [first], "last_offset": [last]})


def recorded_last(storage: Storage, topic: str, partition: int, first: int) -> int | None:
    """The last offset of the range recorded as starting at `first`, if any."""
    rows = storage.query(
        f"SELECT last_offset FROM {TABLE} WHERE topic = {{topic:String}}"
        " AND partition = {partition:UInt32} AND first_offset = {first:UInt64}"
        " ORDER BY recorded_at DESC LIMIT 1",
        {"topic": topic, "partition": partition, "first": first})
    return int(rows[0][0]) if rows else None
