"""The services of server-mode tests: the chDB endpoint here, or real containers when asked.

With VIEWSTATS_DOCKER=1 (a Docker engine at hand, `testcontainers` installed) the same tests run
against the official clickhouse/clickhouse-server and apache/kafka images compose.yaml uses.
Without it nothing here touches Docker, and no test counts a container run it did not make.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.clickhouse_http import endpoint
from viewstats.devtools.kafka_broker import KAFKA_VERSION, wait_until_ready
from viewstats.devtools.processes import free_port

DOCKER = os.environ.get("VIEWSTATS_DOCKER") == "1"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"  # as compose.yaml
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"  # the version the broker fixture runs
READY_TIMEOUT = 120.0


def _container(image: str) -> Any:
    containers = importlib.import_module("testcontainers.core.container")
    return containers.DockerContainer(image)


@contextmanager
def clickhouse_url(path: Path, log: Path) -> Iterator[str]:
    """A URL for CLICKHOUSE_URL: the chDB endpoint on `path`, or a clickhouse-server container."""
    if not DOCKER:
        with endpoint(path, log) as url:
            yield url
        return
    # Without a password the image keeps the default user off the network unless told so.
    server = _container(CLICKHOUSE_IMAGE).with_exposed_ports(8123).with_env(
        "CLICKHOUSE_SKIP_USER_SETUP", "1")
    with server:
        url = f"http://{server.get_container_host_ip()}:{server.get_exposed_port(8123)}"
        deadline = time.monotonic() + READY_TIMEOUT
        while not _pings(url):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}/ping did not answer within {READY_TIMEOUT} s")
            time.sleep(0.2)
        yield url


def _pings(url: str) -> bool:
    try:
        return httpx.get(url + "/ping", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def kafka_container() -> Iterator[str]:
    """A single-node KRaft broker in an apache/kafka container; yields its bootstrap address."""
    port = free_port()  # it listens on the port it advertises, mapped 1:1 to this host
    broker = _container(KAFKA_IMAGE)
    for name, value in {
            "NODE_ID": "1", "PROCESS_ROLES": "broker,controller",
            "LISTENERS": f"PLAINTEXT://:{port},CONTROLLER://:9093",
            "ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
            "CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "TRANSACTION_STATE_LOG_MIN_ISR": "1"}.items():
        broker.with_env(f"KAFKA_{name}", value)
    with broker.with_bind_ports(port, port):
        wait_until_ready(f"127.0.0.1:{port}", READY_TIMEOUT)
        yield f"127.0.0.1:{port}"
