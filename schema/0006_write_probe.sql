-- A writer whose inserts fail probes the database with a one-row insert here, once a second,
-- so it notices by itself that a read-only or full disk was fixed (see docs/architecture.md,
-- "When writes fail"). Nothing reads it; a day's probes are kept to show when a fault ended.
CREATE TABLE IF NOT EXISTS write_probe
(
    at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY at
TTL toDateTime(at) + INTERVAL 1 DAY;
