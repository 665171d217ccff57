-- Views (watch events) per client, hour or UTC day, type and embedding host: the hosts
-- endpoint and the `host` filter and grouping of the views endpoint (architecture §11).
-- Read with sum() GROUP BY; views without a host are stored under "".
-- Each rollup keeps its own dedup window, as the country rollups do (architecture §4).
CREATE TABLE IF NOT EXISTS views_by_host_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    host LowCardinality(String),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, host)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS views_by_host_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    host LowCardinality(String),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, host)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_host_hourly_mv TO views_by_host_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, host, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, host;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_host_daily_mv TO views_by_host_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, host, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, host;

-- Backfill, as in 0008: views first, then empty and copy, so a rerun counts each event once;
-- one row per event, summed by the engine, so memory stays bounded.
TRUNCATE TABLE views_by_host_hourly;

INSERT INTO views_by_host_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, type, host, 1 AS views
FROM player_events
WHERE event = 'watch';

TRUNCATE TABLE views_by_host_daily;

INSERT INTO views_by_host_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, type, host, views
FROM views_by_host_hourly;
