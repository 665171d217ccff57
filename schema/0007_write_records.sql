-- What each write to player_events touched: its clients and the span of event times, recorded
-- by the writer after the write returned. Query APIs that keep sealed buckets in memory poll it
-- (about once a second) and drop every bucket a write touched, late events included, so what
-- they keep stays exact while other processes write (see docs/architecture.md, "Sealed buckets").
CREATE TABLE IF NOT EXISTS write_records
(
    id UUID DEFAULT generateUUIDv4(),
    written_at DateTime64(3, 'UTC') DEFAULT now64(3),
    client_ids Array(UInt32),
    ts_from DateTime64(3, 'UTC'),
    ts_to DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY written_at
TTL toDateTime(written_at) + INTERVAL 1 DAY;
