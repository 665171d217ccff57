from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest

from tests.support.processes import viewstats
from viewstats.core.settings import Settings, SettingsError
from viewstats.ingest.collector.viewer_key import ViewerKeyError
from viewstats.server import viewer_keys


def test_defaults_are_the_embedded_platform() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("data") and settings.clickhouse_url is None
    assert settings.kafka_bootstrap_servers is None
    assert settings.keys_path == Path("data/api_keys")
    assert settings.chdb_path == Path("data/clickhouse")
    assert ipaddress.ip_address("127.0.0.1") in settings.trusted_proxies[0]


def test_flags_override_the_environment() -> None:
    settings = Settings.from_env({"VIEWSTATS_DATA_DIR": "/srv/a", "API_KEYS_FILE": "/run/k"},
                                 data_dir=Path("/srv/b"))
    assert settings.data_dir == Path("/srv/b") and settings.keys_path == Path("/run/k")


def test_the_viewer_key_file_is_in_the_data_dir_unless_set() -> None:
    assert Settings.from_env({}).viewer_key_path == Path("data/viewer-key")
    assert Settings.from_env({"VIEWER_KEY_FILE": "/run/v"}, data_dir=Path("/srv/b")
                             ).viewer_key_path == Path("/run/v")


def test_the_embedded_platform_makes_its_viewer_key_once(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    first = viewer_keys(settings).key(ipaddress.ip_address("203.0.113.7"))
    assert stat.S_IMODE(settings.viewer_key_path.stat().st_mode) == 0o600
    assert viewer_keys(settings).key(ipaddress.ip_address("203.0.113.7")) == first


@pytest.mark.parametrize("env", [{"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"},
                                 {"CLICKHOUSE_URL": "http://localhost:8123"}])
def test_collectors_beside_others_refuse_a_missing_viewer_key(tmp_path: Path,
                                                             env: dict[str, str]) -> None:
    # They must share one secret, which none of them can make for the others.
    settings = Settings.from_env(env, data_dir=tmp_path)
    with pytest.raises(ViewerKeyError, match=f"^viewer key file {tmp_path}/viewer-key: missing"):
        viewer_keys(settings)
    assert not settings.viewer_key_path.exists()


def test_the_cli_reports_an_open_viewer_key_and_exits_2(tmp_path: Path) -> None:
    secret = tmp_path / "viewer-key"
    secret.write_text("ab" * 32 + "\n")
    secret.chmod(0o644)
    result = viewstats("collector", "--data-dir", str(tmp_path), "--port", "0", check=False,
                       env={"VIEWER_KEY_FILE": str(secret), "KAFKA_BOOTSTRAP_SERVERS": "",
                            "CLICKHOUSE_URL": ""})
    assert result.returncode == 2
    assert f"viewstats: error: viewer key file {secret}: group or others may read it" \
        in result.stderr
    assert f"chmod 600 {secret}" in result.stderr


def test_the_sealed_buckets_are_sized_from_the_environment() -> None:
    settings = Settings.from_env({"SEALED_AFTER_S": "60", "SEALED_MAX_MB": "8"})
    assert (settings.sealed_after_s, settings.sealed_max_mb) == (60, 8)


def test_the_http_write_timeout_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).http_write_timeout_s == 15
    assert Settings.from_env({"HTTP_WRITE_TIMEOUT_S": "3"}).http_write_timeout_s == 3


def test_the_query_budget_is_read_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.query_client_concurrency, defaults.query_queue_depth,
            defaults.query_queue_wait_ms, defaults.query_max_execution_ms,
            defaults.query_max_memory_mb) == (2, 14, 1000, 30_000, 1024)
    settings = Settings.from_env({"QUERY_CLIENT_CONCURRENCY": "3", "QUERY_QUEUE_DEPTH": "4",
                                  "QUERY_QUEUE_WAIT_MS": "5", "QUERY_MAX_EXECUTION_MS": "6",
                                  "QUERY_MAX_MEMORY_MB": "7"})
    assert (settings.query_client_concurrency, settings.query_queue_depth,
            settings.query_queue_wait_ms, settings.query_max_execution_ms,
            settings.query_max_memory_mb) == (3, 4, 5, 6, 7)


def test_the_answer_cap_defaults_to_ten_thousand_rows_and_is_set_from_the_environment(
) -> None:
    assert Settings.from_env({}).query_max_rows == 10_000
    assert Settings.from_env({"QUERY_MAX_ROWS": "50"}).query_max_rows == 50


def test_the_embedded_linger_defaults_to_a_second_and_may_be_zero() -> None:
    assert Settings.from_env({}).embedded_linger_ms == 1000
    assert Settings.from_env({"EMBEDDED_LINGER_MS": "0"}).embedded_linger_ms == 0
    assert Settings.from_env({"EMBEDDED_LINGER_MS": "5000"}).embedded_linger_ms == 5000


@pytest.mark.parametrize(("env", "variable"), [
    ({"QUERY_QUEUE_DEPTH": "0"}, "QUERY_QUEUE_DEPTH"),
    ({"QUERY_MAX_MEMORY_MB": "1GB"}, "QUERY_MAX_MEMORY_MB"),
    ({"TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"}, "TRUSTED_PROXIES"),
    ({"CLICKHOUSE_URL": "localhost:8123"}, "CLICKHOUSE_URL"),
    ({"CHDB_POOL_SIZE": "0"}, "CHDB_POOL_SIZE"),
    ({"CHDB_POOL_SIZE": "four"}, "CHDB_POOL_SIZE"),
    ({"SEALED_AFTER_S": "0"}, "SEALED_AFTER_S"),
    ({"SEALED_MAX_MB": "lots"}, "SEALED_MAX_MB"),
    ({"HTTP_WRITE_TIMEOUT_S": "0"}, "HTTP_WRITE_TIMEOUT_S"),
    ({"QUERY_MAX_ROWS": "0"}, "QUERY_MAX_ROWS"),
    ({"EMBEDDED_LINGER_MS": "-1"}, "EMBEDDED_LINGER_MS"),
    ({"EMBEDDED_LINGER_MS": "5001"}, "EMBEDDED_LINGER_MS"),
    ({"EMBEDDED_LINGER_MS": "0.5s"}, "EMBEDDED_LINGER_MS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        Settings.from_env(env)


def test_the_cli_reports_a_bad_setting_and_exits_2(tmp_path: Path) -> None:
    result = viewstats("migrate", "--data-dir", str(tmp_path), check=False,
                       env={"CHDB_POOL_SIZE": "-3"})
    assert result.returncode == 2
    assert "CHDB_POOL_SIZE: must be a positive integer" in result.stderr


def test_help_explains_every_command() -> None:
    text = viewstats("--help").stdout
    for command in ("run", "api", "consumer", "migrate", "keys"):
        assert command in text
    assert "--data-dir" in viewstats("run", "--help").stdout
