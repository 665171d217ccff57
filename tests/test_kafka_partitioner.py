"""The collector's partitioner picks the partition aiokafka's (and Java's) default picks."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner, murmur2

from viewstats.ingest.collector import partitioner


def test_murmur2_is_the_kafka_clients_hash_for_every_tail_length() -> None:
    rng = random.Random(7)
    for length in range(80):
        for _ in range(20):
            data = rng.randbytes(length)
            assert partitioner.murmur2(data) == murmur2(data), data


def test_a_view_goes_where_the_default_partitioner_puts_it() -> None:
    default = DefaultPartitioner()
    for count in (1, 3, 6, 64):
        partitions = list(range(count))
        for _ in range(200):
            key = str(uuid.uuid4()).encode()
            assert partitioner.partition_of(key, count) == default(key, partitions, partitions)
