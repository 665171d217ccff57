-- The audience rollups (architecture §18), fed from the columns of 0011. Views (watch events)
-- per client, hour or UTC day, type and the dimension an endpoint breaks down by; one rollup
-- serves browser, os and platform together, so ingest pays for three rollups, not five.
-- Read with sum() GROUP BY, like the rollups of 0003-0010.

CREATE TABLE IF NOT EXISTS views_by_device_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    browser LowCardinality(String),
    os LowCardinality(String),
    platform Enum8('unknown' = 1, 'desktop' = 2, 'mobile' = 3, 'tablet' = 4, 'tv' = 5, 'bot' = 6),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, browser, os, platform)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS views_by_device_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    browser LowCardinality(String),
    os LowCardinality(String),
    platform Enum8('unknown' = 1, 'desktop' = 2, 'mobile' = 3, 'tablet' = 4, 'tv' = 5, 'bot' = 6),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, browser, os, platform)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_device_hourly_mv TO views_by_device_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, browser, os, platform, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, browser, os, platform;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_device_daily_mv TO views_by_device_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, browser, os, platform, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, browser, os, platform;

CREATE TABLE IF NOT EXISTS views_by_region_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    region LowCardinality(String),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, country, region)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS views_by_region_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    region LowCardinality(String),
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, country, region)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_region_hourly_mv TO views_by_region_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, country, region, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, country, region;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_region_daily_mv TO views_by_region_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, country, region, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, country, region;

CREATE TABLE IF NOT EXISTS views_by_embed_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    embed_url String,
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, embed_url)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS views_by_embed_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    embed_url String,
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, embed_url)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_embed_hourly_mv TO views_by_embed_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, embed_url, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, embed_url;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_embed_daily_mv TO views_by_embed_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, embed_url, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, embed_url;

-- Unique viewers per client, hour or UTC day and type, of every event, as exact sets of viewer
-- keys: a distinct count cannot be summed, but sets merge (uniqExactMerge), so a window is
-- still whole days, whole hours and raw edges in one statement (query_api/breakdown.py). Rows
-- without a viewer key (stored before 0011) are left out.

CREATE TABLE IF NOT EXISTS viewers_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    viewers AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS viewers_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    viewers AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (client_id, day, type)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS viewers_hourly_mv TO viewers_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, uniqExactState(viewer) AS viewers
FROM player_events
WHERE viewer != 0
GROUP BY client_id, hour, type;

CREATE MATERIALIZED VIEW IF NOT EXISTS viewers_daily_mv TO viewers_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, uniqExactState(viewer) AS viewers
FROM player_events
WHERE viewer != 0
GROUP BY client_id, day, type;

-- Backfill the view rollups with the events stored before them, as in 0008 (views first, then
-- empty and copy, so a rerun counts each event once; one row per event, summed by the engine,
-- so memory stays bounded). Those events read as unknown device, region "" and page "".
-- Nothing to backfill into viewers_*: no earlier row has a viewer key.

TRUNCATE TABLE views_by_device_hourly;

INSERT INTO views_by_device_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, type, browser, os, platform, 1 AS views
FROM player_events
WHERE event = 'watch';

TRUNCATE TABLE views_by_device_daily;

INSERT INTO views_by_device_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, type, browser, os, platform, views
FROM views_by_device_hourly;

TRUNCATE TABLE views_by_region_hourly;

INSERT INTO views_by_region_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, type, country, region, 1 AS views
FROM player_events
WHERE event = 'watch';

TRUNCATE TABLE views_by_region_daily;

INSERT INTO views_by_region_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, type, country, region, views
FROM views_by_region_hourly;

TRUNCATE TABLE views_by_embed_hourly;

INSERT INTO views_by_embed_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, type, embed_url, 1 AS views
FROM player_events
WHERE event = 'watch';

TRUNCATE TABLE views_by_embed_daily;

INSERT INTO views_by_embed_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, type, embed_url, views
FROM views_by_embed_hourly;
