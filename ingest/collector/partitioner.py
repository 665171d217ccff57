"""The partition of a keyed event, as Kafka's own clients pick it, at a fraction of the cost.

aiokafka's DefaultPartitioner hashes the key with a pure-Python murmur2 that reads it byte by
byte, and lists the topic's partitions twice for every message: about a tenth of the Kafka
sink's CPU per single-event beacon (measured). This is the same function, Java's
`Utils.murmur2` made positive and taken modulo the partition count, so every event of a view
lands where any Kafka client would put it; it reads the key four bytes at a time.
"""

from __future__ import annotations

import struct

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}  # little-endian 32-bit words, by count (keys are few sizes)


def murmur2(data: bytes) -> int:
    length = len(data)
    h = _SEED ^ length
    words = _WORDS.get(length >> 2)
    if words is None:
        words = _WORDS.setdefault(length >> 2, struct.Struct(f"<{length >> 2}I"))
    m, mask = _M, _MASK  # locals: this loop is the whole cost
    for k in words.unpack_from(data):
        k = k * m & mask
        h = (h * m ^ (k ^ k >> 24) * m) & mask
    if tail := length & 3:  # the last 1-3 bytes, little-endian as Java's fall-through reads them
        h = (h ^ int.from_bytes(data[length - tail:], "little")) * m & mask
    h ^= h >> 13
    h = h * m & mask
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition among `partitions` (numbered from 0) that Kafka's default picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
