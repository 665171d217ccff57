-- Exactly once from Kafka (architecture §5): each batch's offset range is recorded here before the
-- batch is inserted, so after a crash the first batch of a partition is rebuilt with exactly the
-- same range and therefore the same insert_deduplication_token.
CREATE TABLE IF NOT EXISTS consumer_batches
(
    topic String,
    partition UInt32,
    first_offset UInt64,
    last_offset UInt64,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (topic, partition, first_offset);
