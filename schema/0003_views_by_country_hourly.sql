-- Views (watch events) per client, hour, type and country. SummingMergeTree collapses rows only
-- eventually, so readers always use sum() ... GROUP BY. The target table keeps its own dedup
-- window: a replayed block is dropped here too (deduplicate_blocks_in_dependent_materialized_views).
CREATE TABLE IF NOT EXISTS views_by_country_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_country_hourly_mv TO views_by_country_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, country, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, country;
