"""compose.yaml and the Dockerfile agree with the CLI, settings and tests (without Docker)."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.server_mode import CLICKHOUSE_IMAGE, KAFKA_IMAGE
from viewstats.cli import build_parser
from viewstats.core import settings as settings_module
from viewstats.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
VIEWSTATS = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
# What Settings.from_env reads, taken from its source so a new variable needs no list to update.
SETTINGS_VARIABLES = set(re.findall(r'env\.get\("([A-Z_]+)"\)',
                                    inspect.getsource(settings_module)))
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _resolved(environment: dict[str, Any]) -> dict[str, str]:
    """The environment as compose hands it over when no variable is set: `${X:-d}` is d."""
    return {k: _DEFAULTED.sub(lambda m: m[2], str(v)) for k, v in environment.items()}


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_the_topology_is_all_there() -> None:
    assert {"kafka", "clickhouse", "migrate", "collector", "consumer", "api"} <= set(SERVICES)
    assert set(VIEWSTATS) == {"migrate", "collector", "consumer", "api"}
    assert SERVICES["kafka"]["image"] == SERVICES["kafka-topics"]["image"] == KAFKA_IMAGE
    assert SERVICES["clickhouse"]["image"] == CLICKHOUSE_IMAGE
    assert SERVICES["consumer"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("name", sorted(VIEWSTATS))
def test_each_command_is_a_real_viewstats_command(name: str) -> None:
    command = VIEWSTATS[name]["command"]
    args = build_parser().parse_args(command)
    assert args.command == command[0]
    if "--host" in command:
        assert args.host == "0.0.0.0"  # reachable from the other containers


@pytest.mark.parametrize("name", sorted(VIEWSTATS))
def test_each_environment_is_one_the_settings_read_and_accept(name: str) -> None:
    assert {"CLICKHOUSE_URL", "KAFKA_BOOTSTRAP_SERVERS", "GEOIP_DB"} <= SETTINGS_VARIABLES
    environment = _resolved(VIEWSTATS[name]["environment"])
    assert set(environment) <= SETTINGS_VARIABLES
    settings = Settings.from_env(environment)
    assert settings.clickhouse_url and settings.clickhouse_url.endswith("@clickhouse:8123")
    assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_the_collector_resolves_countries_with_the_database_in_the_image() -> None:
    environment = _resolved(VIEWSTATS["collector"]["environment"])
    assert f"GEOIP_DB={environment['GEOIP_DB']}" in DOCKERFILE
    assert Settings.from_env(environment).trusted_proxies


def test_the_key_file_is_in_a_read_only_directory_mount() -> None:
    for name in ("collector", "consumer", "api"):
        keys = Path(_resolved(VIEWSTATS[name]["environment"])["API_KEYS_FILE"])
        assert f"./secrets:{keys.parent}:ro" in VIEWSTATS[name]["volumes"], name


def test_the_collector_reads_the_viewer_key_from_the_secrets_mount() -> None:
    secret = Path(_resolved(VIEWSTATS["collector"]["environment"])["VIEWER_KEY_FILE"])
    assert f"./secrets:{secret.parent}:ro" in VIEWSTATS["collector"]["volumes"]


def test_long_running_services_have_healthchecks_on_their_own_port() -> None:
    for name, service in SERVICES.items():
        if _one_shot(service):
            continue
        assert "healthcheck" in service, name
        test = " ".join(service["healthcheck"]["test"])
        if name in VIEWSTATS:
            args = build_parser().parse_args(service["command"])
            # The consumer has no listen flags yet; it serves /healthz on the CLI's default port.
            port = getattr(args, "port", build_parser().parse_args(["run"]).port)
            assert f"http://127.0.0.1:{port}/healthz" in test, name


def test_dependencies_exist_and_wait_for_the_right_thing() -> None:
    for name, service in SERVICES.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in SERVICES, (name, target)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], (name, target)
            else:
                assert rule["condition"] == "service_completed_successfully", (name, target)
                assert _one_shot(SERVICES[target]), (name, target)
    assert "clickhouse" in SERVICES["migrate"]["depends_on"]
    for name in ("collector", "consumer", "api"):
        assert "migrate" in VIEWSTATS[name]["depends_on"], name


def test_the_topic_has_a_partition_for_every_consumer() -> None:
    script = " ".join(SERVICES["kafka-topics"]["command"])
    assert "player-events" in script and "player-events-dlq" in script
    partitions = re.search(r"--partitions (\d+)", script)
    assert partitions and int(partitions[1]) >= SERVICES["consumer"]["deploy"]["replicas"]


def test_the_dockerfile_installs_the_package_and_runs_viewstats() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert stages[-1] == "python:3.11-slim"
    assert 'ENTRYPOINT ["viewstats"]' in DOCKERFILE
    assert "viewstats setup --cache-dir" in DOCKERFILE  # the asset fetch `make setup` uses
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    # Every folder the package is built from is in the image (viewstats/ holds symlinks to the
    # others, which COPY keeps as links).
    for folder in set(pyproject["tool"]["setuptools"]["package-dir"].values()):
        assert re.search(rf"^COPY {folder} {folder}$", DOCKERFILE, re.MULTILINE), folder
