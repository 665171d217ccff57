"""One typed settings object per process, read from the environment and validated at start."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


def _networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc} (expected comma-separated IPs or CIDRs)") from exc


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not an integer") from None
    if value <= 0:
        raise SettingsError(f"{name}: must be a positive integer, got {value}")
    return value


# Past this a lone beacon's 202 would come later than clients usually wait for one (httpx's 5 s).
MAX_LINGER_MS: Final = 5000


def _linger_ms(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not an integer (milliseconds)") from None
    if not 0 <= value <= MAX_LINGER_MS:
        raise SettingsError(f"{name}: must be between 0 and {MAX_LINGER_MS} ms, got {value}")
    return value


# Folders `viewstats setup` fills in the shared cache (viewstats/assets.py). A data dir may hold
# its own folder of the same name, which then wins (an operator's copy, or an older setup's).
GEOIP_DIR: Final = "geoip"
PLAYER_ASSETS_DIR: Final = "player-assets"
DASHBOARD_ASSETS_DIR: Final = "dashboard-assets"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/viewstats, else ~/.cache/viewstats: one cache for every data dir."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "viewstats"


def _url(name: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: {raw!r} must start with http:// or https://")
    return raw


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    clickhouse_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    api_keys_file: Path | None = None
    # The secret viewer keys are hashed with (ingest/collector/viewer_key.py): every collector
    # of a platform must read the same file.
    viewer_key_file: Path | None = None
    geoip_db: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    trusted_proxies: tuple[IPNetwork, ...] = field(
        default_factory=lambda: _networks("TRUSTED_PROXIES", "127.0.0.0/8,::1/128"))
    # Reads hold at most pool_size - 1 (the writer's), so 6 leave 5: two clients at their full
    # query budget and one more (architecture §17).
    chdb_pool_size: int = 6
    kafka_topic: str = "player-events"
    consumer_group: str = "viewstats-consumers"
    # The partitions `run`, `collector` and `consumer` create the topic with when it is missing.
    kafka_topic_partitions: int = 6
    # How long a beacon waits for Kafka's acknowledgement before the collector answers 503.
    kafka_produce_timeout_s: int = 5
    # How far back a writer that starts, or takes a Kafka partition over, reloads the stored
    # (view_id, event) pairs its dedup window drops retries by (architecture §3).
    dedup_horizon_s: int = 3600
    # How long the embedded writer holds a batch's first beacon for company before it inserts
    # (ingest/collector/embedded_sink.py): an insert costs ~40-60 ms of CPU whatever its size,
    # so a trickle of 10 beacons/s costs ~5% of a core at 1 s, ~8-15% at 0.5 s.
    embedded_linger_ms: int = 1000
    # The query API keeps past UTC days and hours in memory once they ended this long ago
    # (architecture §13); what it keeps is dropped by writes, not by age.
    sealed_after_s: int = 300
    sealed_max_mb: int = 1024
    # A connection whose answer the client stops taking for this long is closed, freeing the
    # answer it held (viewstats/http_limits.py).
    http_write_timeout_s: int = 15
    # Each client's budget of engine queries in one API process (architecture §17): how many
    # run at once, how many more wait and for how long before a 429, and each query's engine
    # limits (past which it gets a 503).
    query_client_concurrency: int = 2
    query_queue_depth: int = 14
    query_queue_wait_ms: int = 1000
    query_max_execution_ms: int = 30_000
    query_max_memory_mb: int = 1024
    # The most rows any statistics answer may have; a larger one is a 422 that says how to
    # narrow the request (architecture §15): a dashboard draws no more, and Gcore's SDK reads
    # a whole answer into memory.
    query_max_rows: int = 10_000

    @property
    def keys_path(self) -> Path:
        return self.api_keys_file or self.data_dir / "api_keys"

    @property
    def viewer_key_path(self) -> Path:
        return self.viewer_key_file or self.data_dir / "viewer-key"

    @property
    def geoip_path(self) -> Path:
        """GEOIP_DB, else <data-dir>/geoip or the cache's copy from `viewstats setup`."""
        return self.geoip_db or self._local_or_cached(GEOIP_DIR)

    @property
    def player_assets_path(self) -> Path:
        """The folder served as /player/static/vendor/ (hls.min.js)."""
        return self._local_or_cached(PLAYER_ASSETS_DIR)

    @property
    def dashboard_assets_path(self) -> Path:
        """The folder served as /dashboard/static/vendor/ (map, chart, world atlas)."""
        return self._local_or_cached(DASHBOARD_ASSETS_DIR)

    def _local_or_cached(self, name: str) -> Path:
        # A non-empty folder in the data dir wins; else the shared cache's when setup filled it;
        # else the data dir's again, so that the "not found" error names the usual place.
        for folder in (self.data_dir / name, self.cache_dir / name):
            if folder.is_dir() and any(folder.iterdir()):
                return folder
        return self.data_dir / name

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from `env` (default os.environ); CLI flags arrive as `overrides`."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if raw := env.get("VIEWSTATS_DATA_DIR"):
            values["data_dir"] = Path(raw)
        if raw := env.get("CLICKHOUSE_URL"):
            values["clickhouse_url"] = _url("CLICKHOUSE_URL", raw)
        if raw := env.get("KAFKA_BOOTSTRAP_SERVERS"):
            values["kafka_bootstrap_servers"] = raw
        if raw := env.get("API_KEYS_FILE"):
            values["api_keys_file"] = Path(raw)
        if raw := env.get("VIEWER_KEY_FILE"):
            values["viewer_key_file"] = Path(raw)
        if raw := env.get("GEOIP_DB"):
            values["geoip_db"] = Path(raw)
        values["cache_dir"] = Path(raw) if (raw := env.get("VIEWSTATS_CACHE_DIR")) \
            else default_cache_dir(env)
        if (raw := env.get("TRUSTED_PROXIES")) is not None:
            values["trusted_proxies"] = _networks("TRUSTED_PROXIES", raw)
        if raw := env.get("VIEWSTATS_TOPIC"):
            values["kafka_topic"] = raw
        if raw := env.get("VIEWSTATS_CONSUMER_GROUP"):
            values["consumer_group"] = raw
        if raw := env.get("VIEWSTATS_TOPIC_PARTITIONS"):
            values["kafka_topic_partitions"] = _positive_int("VIEWSTATS_TOPIC_PARTITIONS", raw)
        if raw := env.get("KAFKA_PRODUCE_TIMEOUT_S"):
            values["kafka_produce_timeout_s"] = _positive_int("KAFKA_PRODUCE_TIMEOUT_S", raw)
        if raw := env.get("CHDB_POOL_SIZE"):
            values["chdb_pool_size"] = _positive_int("CHDB_POOL_SIZE", raw)
        if raw := env.get("DEDUP_HORIZON_S"):
            values["dedup_horizon_s"] = _positive_int("DEDUP_HORIZON_S", raw)
        if raw := env.get("EMBEDDED_LINGER_MS"):
            values["embedded_linger_ms"] = _linger_ms("EMBEDDED_LINGER_MS", raw)
        if raw := env.get("SEALED_AFTER_S"):
            values["sealed_after_s"] = _positive_int("SEALED_AFTER_S", raw)
        if raw := env.get("SEALED_MAX_MB"):
            values["sealed_max_mb"] = _positive_int("SEALED_MAX_MB", raw)
        if raw := env.get("HTTP_WRITE_TIMEOUT_S"):
            values["http_write_timeout_s"] = _positive_int("HTTP_WRITE_TIMEOUT_S", raw)
        for name in ("QUERY_CLIENT_CONCURRENCY", "QUERY_QUEUE_DEPTH", "QUERY_QUEUE_WAIT_MS",
                     "QUERY_MAX_EXECUTION_MS", "QUERY_MAX_MEMORY_MB", "QUERY_MAX_ROWS"):
            if raw := env.get(name):
                values[name.lower()] = _positive_int(name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
