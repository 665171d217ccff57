-- Views (watch events) per client, hour or UTC day, type and video: the popular videos and the
-- `id` filter and grouping of the views endpoint (architecture §11). Read with sum() GROUP BY.
-- Each rollup keeps its own dedup window, as the country rollups do (architecture §4).
CREATE TABLE IF NOT EXISTS views_by_video_hourly
(
    client_id UInt32,
    hour DateTime('UTC'),
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    video_id String,
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour, type, video_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS views_by_video_daily
(
    client_id UInt32,
    day Date,
    type Enum8('vod' = 1, 'live' = 2, 'playlist' = 3),
    video_id String,
    views UInt64
)
ENGINE = SummingMergeTree(views)
PARTITION BY toYear(day)
ORDER BY (client_id, day, type, video_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_video_hourly_mv TO views_by_video_hourly AS
SELECT client_id, toStartOfHour(ts) AS hour, type, video_id, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, hour, type, video_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS views_by_video_daily_mv TO views_by_video_daily AS
SELECT client_id, toDate(ts, 'UTC') AS day, type, video_id, count() AS views
FROM player_events
WHERE event = 'watch'
GROUP BY client_id, day, type, video_id;

-- Backfill the events stored before the views above existed. The views come first and the
-- tables are emptied just before the copy, so a migration interrupted half way and run again
-- counts each event once; writers must be stopped meanwhile (README, "Upgrading").
-- insert_deduplicate = 0: a copied block is never a replay, even if it equals an earlier one.
-- No GROUP BY: the engine sums equal keys within each inserted block and merges the rest in
-- the background, so memory stays bounded however many events there are (a GROUP BY over
-- 1e9 events would hold hundreds of millions of groups at once).
TRUNCATE TABLE views_by_video_hourly;

INSERT INTO views_by_video_hourly SETTINGS insert_deduplicate = 0
SELECT client_id, toStartOfHour(ts) AS hour, type, video_id, 1 AS views
FROM player_events
WHERE event = 'watch';

TRUNCATE TABLE views_by_video_daily;

INSERT INTO views_by_video_daily SETTINGS insert_deduplicate = 0
SELECT client_id, toDate(hour) AS day, type, video_id, views
FROM views_by_video_hourly;
