-- What the collector derives for the audience statistics (architecture §18): the viewer's
-- browser, operating system and kind of device from its User-Agent, its region from the City
-- database, the page that embeds the player, and a keyed hash of its IP (never the IP itself).
-- A row stored before reads the defaults: unknown device, region "", page "", viewer 0, which
-- the unique-viewer counts leave out (README, "Audience statistics").
ALTER TABLE player_events
    ADD COLUMN IF NOT EXISTS browser LowCardinality(String) DEFAULT 'unknown',
    ADD COLUMN IF NOT EXISTS os LowCardinality(String) DEFAULT 'unknown',
    ADD COLUMN IF NOT EXISTS platform
        Enum8('unknown' = 1, 'desktop' = 2, 'mobile' = 3, 'tablet' = 4, 'tv' = 5, 'bot' = 6)
        DEFAULT 'unknown',
    ADD COLUMN IF NOT EXISTS region LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS embed_url String DEFAULT '',
    ADD COLUMN IF NOT EXISTS viewer UInt64 DEFAULT 0;
