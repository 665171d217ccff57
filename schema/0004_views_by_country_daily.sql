-- Views per client, UTC day, type and country: whole days of a window are read from here.
CREATE TABLE IF NOT EXISTS views_by_country_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_country_daily_mv TO views_by_country_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, country, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, country;
