-- Every event (init, start, watch) per client, hour or UTC day, event, type and country: the
-- `event` filter and grouping of the views endpoint, alone or with `country` (architecture §11).
-- The country rollups count only `watch`; read these with sum() GROUP BY too.
CREATE TABLE IF NOT EXISTS events_by_country_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    event Enum8('init' = 1, 'start' = 2, 'watch' = 3),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    events UInt64
)
ENGINE = SummingMergeTree(events)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, event, type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS events_by_country_daily
(
    client_id UInt32,
    day Date,
    event Enum8('init' = 1, 'start' = 2, 'watch' = 3),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    country LowCardinality(FixedString(2)),
    events UInt64
)
ENGINE = SummingMergeTree(events)
PARTITION BY toYear(day)
ORDER BY (client_id, day, event, type, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_country_hourly_mv TO events_by_country_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, event, type, country, count() AS events
FROM player_events
GROUP BY client_id, hour, event, type, country;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_country_daily_mv TO events_by_country_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, event, type, country, count() AS events
FROM player_events
GROUP BY client_id, day, event, type, country;

-- Backfill, as in 0008: views first, then empty and copy, so a rerun counts each event once;
-- one row per event, summed by the engine, so memory stays bounded.
TRUNCATE TABLE events_by_country_hourly;

INSERT INTO events_by_country_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, event, type, country, 1 AS events
FROM player_events;

TRUNCATE TABLE events_by_country_daily;

INSERT INTO events_by_country_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, event, type, country, events
FROM events_by_country_hourly;
