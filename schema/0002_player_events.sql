-- Every accepted player event, one row each. Sorted by (client_id, ts) so a client's window is
-- one contiguous range: the partial-hour edges of a countries query read only a few granules.
-- non_replicated_deduplication_window: its default 0 disables insert deduplication on a plain
-- MergeTree, and exactly-once replay (architecture §5) relies on it.
CREATE TABLE IF NOT EXISTS player_events
(
    client_id UInt32,
    ts DateTime64(3, 'UTC'),
    event Enum8('init' = 1, 'start' = 2, 'watch' = 3),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    video_id String,
    view_id UUID,
    country LowCardinality(FixedString(2)),
    host LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (client_id, ts)
SETTINGS non_replicated_deduplication_window = 10000;
