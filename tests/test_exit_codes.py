"""Exit codes tell an orchestrator the truth (`viewstats --help`, architecture §8).

0 a clean stop; 1 a bug, with its traceback, or a shutdown that failed; 2 configuration or
environment, in one line; 3 a server that could not start, with the cause logged. Under
`--workers` a worker's 2 or 3 stops the supervisor with that code, and a bug's 1 is restarted.

Each case runs the real CLI as a subprocess. A bug, or a sink that fails, cannot be caused
from outside, so those cases run the CLI from a script that first puts that one fault into the
code (`_with_fault`); `--workers` spawns each worker from the same script, so the fault is in
every worker too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.geoip_fixture import shared_test_mmdb
from tests.support.kafka import KafkaBroker
from tests.support.server_mode import clickhouse_url
from viewstats.devtools.processes import (
    VIEWSTATS,
    free_port,
    shared_viewer_key,
    stop,
    wait_for_http,
)
from viewstats.workers import MAX_RESTARTS

WITHIN = 120.0  # seconds for a process to exit that should (never a timing assertion)
NO_SERVICES = {"CLICKHOUSE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""}
UNREACHABLE = "127.0.0.1:9"  # discard: nothing listens there
TRACEBACK = "Traceback (most recent call last)"
ONE_LINE = "viewstats: error: "

# A lookup that fails in the code, the kind of bug a blanket `except KeyError` passed off as
# configuration; open_storage is the first thing every serving role does.
BUG = """
from viewstats import server

def open_storage(settings):
    return {}["clickhouse_url"]

server.open_storage = open_storage
"""

# The sinks of both modes: the lifespan starts one and flushes it on the way out.
SINK_FAILS_TO = """
from viewstats.ingest.collector.embedded_sink import EmbeddedSink
from viewstats.ingest.collector.kafka_sink import KafkaSink

async def fail(self):
    raise ConnectionError("the sink cannot {action}")

EmbeddedSink.{method} = KafkaSink.{method} = fail
"""
START_FAILS = SINK_FAILS_TO.format(method="start", action="start")
FLUSH_FAILS = SINK_FAILS_TO.format(method="stop", action="flush")

# A migration whose SQL the engine refuses, on a database that was opened and answers: the
# mistake is the code's, and only its traceback says where it is.
BAD_MIGRATION = """
from viewstats.schema import migrations

shipped = migrations.load_migrations

def load_migrations():
    found = shipped()
    return [*found, migrations.Migration(len(found) + 1, "a_typo", "SELEC 1;")]

migrations.load_migrations = load_migrations
"""

CONSUMER_FAILS = """
from viewstats.ingest.consumer.kafka_consumer import Consumer

async def run(self):
    raise ConnectionError("the consumer lost its database for good")

Consumer.run = run
"""


def _with_fault(folder: Path, fault: str) -> list[str]:
    """The `viewstats` command with `fault` (module-level Python) run before the CLI."""
    script = folder / "viewstats_with_a_fault.py"
    script.write_text(textwrap.dedent(fault) + textwrap.dedent("""
        if __name__ == "__main__":
            from viewstats.cli import main
            raise SystemExit(main())
        """))
    return [sys.executable, str(script)]


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, "GEOIP_DB": str(shared_test_mmdb()), **NO_SERVICES, **extra}


def _run(command: list[str], *args: str, env: Mapping[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=WITHIN,
                          env=_env(env or {}), check=False)


@contextmanager
def _serving(command: list[str], *args: str, log: Path,
             env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A role started and answering until the block ends, then SIGTERMed (its output in `log`,
    its exit code the process's returncode once the block is left)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, *args, "--port", str(port)], env=_env(env or {}),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc.poll)
        yield proc
    finally:
        stop(proc, timeout=WITHIN)


def _serve_until_sigterm(command: list[str], *args: str, log: Path,
                         env: Mapping[str, str] | None = None) -> int:
    """Start a role, wait until it answers, SIGTERM it; its exit code (the output in `log`)."""
    with _serving(command, *args, log=log, env=env) as proc:
        pass
    return proc.returncode


def _one_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2 with `message` on the CLI's own line, and no traceback."""
    assert result.returncode == 2, result.stderr
    assert f"{ONE_LINE}{message}" in result.stderr
    assert TRACEBACK not in result.stderr


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("exit-codes-db")
    with clickhouse_url(folder / "clickhouse", folder / "clickhouse.log") as url:
        yield url


def _kafka_env(bootstrap: str, database: str, folder: Path) -> dict[str, str]:
    topic = f"exit-codes-{uuid.uuid4().hex[:8]}"
    return {"CLICKHOUSE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "VIEWSTATS_TOPIC": topic, "VIEWSTATS_CONSUMER_GROUP": f"viewstats-{topic}",
            "VIEWER_KEY_FILE": str(shared_viewer_key(folder))}


# --- 2: configuration and environment, one line -------------------------------------------

@pytest.mark.chdb
def test_an_unreachable_kafka_is_one_line_naming_its_setting(tmp_path: Path) -> None:
    # As an unreachable CLICKHOUSE_URL is, where aiokafka's traceback and 1 used to be.
    result = _run(VIEWSTATS, "consumer", "--data-dir", str(tmp_path),
                  env={"KAFKA_BOOTSTRAP_SERVERS": UNREACHABLE})
    _one_line(result, f"KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka at {UNREACHABLE}: ")


@pytest.mark.parametrize("command", ["api", "migrate"])
def test_an_unreachable_clickhouse_is_one_line(tmp_path: Path, command: str) -> None:
    result = _run(VIEWSTATS, command, "--data-dir", str(tmp_path),
                  env={"CLICKHOUSE_URL": f"http://{UNREACHABLE}"})
    _one_line(result, f"cannot connect to ClickHouse at http://{UNREACHABLE}: ")


@pytest.mark.chdb
def test_a_data_dir_another_process_holds_is_one_line(tmp_path: Path) -> None:
    # chDB lets one process own a path: a second one is the operator's to stop, not a bug.
    data = tmp_path / "data"
    with _serving(VIEWSTATS, "api", "--data-dir", str(data), log=tmp_path / "api.log"):
        result = _run(VIEWSTATS, "migrate", "--data-dir", str(data))
    _one_line(result, f"cannot open chDB at {data / 'clickhouse'}: ")


@pytest.mark.parametrize(("args", "message"), [
    (["keys", "revoke", "7"], "no key with id 7 in "),
    (["migrate", "--cluster", "c` SYNC; DROP", "--print"], "cluster name 'c` SYNC; DROP': "),
])
def test_a_wrong_argument_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    _one_line(_run(VIEWSTATS, *args, "--data-dir", str(tmp_path)), message)


def test_workers_stop_on_an_unreachable_database_with_2(tmp_path: Path) -> None:
    # Every worker would find the same database unreachable: restarting them would only spin.
    result = _run(VIEWSTATS, "api", "--workers", "2", "--port", str(free_port()),
                  "--data-dir", str(tmp_path), env={"CLICKHOUSE_URL": f"http://{UNREACHABLE}"})
    _one_line(result, f"cannot connect to ClickHouse at http://{UNREACHABLE}: ")
    assert "exited with 2 before serving; stopping" in result.stderr
    assert "starting it again" not in result.stderr


@pytest.mark.chdb
@pytest.mark.slow
def test_workers_stop_on_an_unreachable_kafka_with_2(tmp_path: Path, database: str) -> None:
    result = _run(VIEWSTATS, "collector", "--workers", "2", "--port", str(free_port()),
                  "--data-dir", str(tmp_path),
                  env={"CLICKHOUSE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": UNREACHABLE})
    _one_line(result, f"KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka at {UNREACHABLE}: ")
    assert "exited with 2 before serving; stopping" in result.stderr


# --- 1: a bug shows its traceback -----------------------------------------------------------

def test_a_bug_shows_its_traceback_and_exits_1(tmp_path: Path) -> None:
    result = _run(_with_fault(tmp_path, BUG), "api", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result.stderr
    assert TRACEBACK in result.stderr
    assert "KeyError: 'clickhouse_url'" in result.stderr
    assert ONE_LINE not in result.stderr  # not passed off as configuration


@pytest.mark.chdb
@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_a_statement_the_database_refuses_shows_its_traceback_and_exits_1(
        tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> None:
    # A StorageError, as an unreachable database is, yet the database answered: not exit 2.
    env = {"CLICKHOUSE_URL": request.getfixturevalue("database")} if backend == "server" else {}
    result = _run(_with_fault(tmp_path, BAD_MIGRATION), "migrate",
                  "--data-dir", str(tmp_path / "data"), env=env)
    assert result.returncode == 1, result.stderr
    assert TRACEBACK in result.stderr
    assert "viewstats.core.storage.StorageError: " in result.stderr
    assert "SYNTAX_ERROR" in result.stderr
    assert "in apply_plan" in result.stderr  # where the statement came from
    assert ONE_LINE not in result.stderr


@pytest.mark.slow
def test_workers_with_a_bug_are_restarted_then_stop_with_1(tmp_path: Path) -> None:
    # A crash may be a passing one, so the worker is started again, until restarts pile up.
    # The database is never reached: the bug comes first.
    result = _run(_with_fault(tmp_path, BUG), "api", "--workers", "2",
                  "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
                  env={"CLICKHOUSE_URL": f"http://{UNREACHABLE}"})
    assert result.returncode == 1, result.stderr
    assert "KeyError: 'clickhouse_url'" in result.stderr
    assert result.stderr.count(TRACEBACK) > MAX_RESTARTS
    assert "exited with 1; starting it again" in result.stderr
    assert f"the {MAX_RESTARTS + 1}th restart" in result.stderr
    assert ONE_LINE not in result.stderr


# --- 3: a server that could not start -------------------------------------------------------

@pytest.mark.chdb
def test_a_port_in_use_exits_3_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(VIEWSTATS, "api", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 3, result.stderr
    assert f"error while attempting to bind on address ('127.0.0.1', {port}): " \
           "address already in use" in result.stderr


@pytest.mark.chdb
def test_a_failed_startup_exits_3_with_its_cause_logged(tmp_path: Path) -> None:
    result = _run(_with_fault(tmp_path, START_FAILS), "collector",
                  "--port", str(free_port()), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 3, result.stderr
    assert "ConnectionError: the sink cannot start" in result.stderr
    assert "Application startup failed" in result.stderr


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_workers_stop_on_a_failed_startup_with_3(tmp_path: Path, kafka: KafkaBroker,
                                                  database: str) -> None:
    result = _run(_with_fault(tmp_path, START_FAILS), "collector", "--workers", "2",
                  "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
                  env=_kafka_env(kafka.bootstrap, database, tmp_path))
    assert result.returncode == 3, result.stderr
    assert "ConnectionError: the sink cannot start" in result.stderr
    assert "exited with 3 before serving; stopping" in result.stderr


# --- 1: a shutdown that failed, a consumer that stopped -------------------------------------

@pytest.mark.chdb
def test_a_clean_stop_exits_0_and_a_failed_flush_1(tmp_path: Path) -> None:
    # `run`: it migrates its fresh data dir, which a collector's start reads.
    assert _serve_until_sigterm(VIEWSTATS, "run", "--data-dir", str(tmp_path / "a"),
                                log=tmp_path / "clean.log") == 0
    log = tmp_path / "flush.log"
    code = _serve_until_sigterm(_with_fault(tmp_path, FLUSH_FAILS), "run",
                                "--data-dir", str(tmp_path / "b"), log=log)
    assert code == 1  # acknowledged beacons may be lost: not a clean stop
    assert "ConnectionError: the sink cannot flush" in log.read_text()
    assert "Application shutdown failed" in log.read_text()


@pytest.mark.chdb
@pytest.mark.kafka
@pytest.mark.slow
def test_workers_whose_flush_failed_exit_1(tmp_path: Path, kafka: KafkaBroker,
                                           database: str) -> None:
    log = tmp_path / "workers.log"
    code = _serve_until_sigterm(_with_fault(tmp_path, FLUSH_FAILS), "collector", "--workers",
                                "2", "--data-dir", str(tmp_path / "data"), log=log,
                                env=_kafka_env(kafka.bootstrap, database, tmp_path))
    assert code == 1
    assert "workers stopped, exit codes [1, 1]" in log.read_text()


@pytest.mark.chdb
@pytest.mark.kafka
def test_a_consumer_that_stopped_on_an_error_exits_1(tmp_path: Path, kafka: KafkaBroker) -> None:
    # It shuts itself down so that it is started again; with 0 a restart-on-failure policy
    # would leave it down.
    result = _run(_with_fault(tmp_path, CONSUMER_FAILS), "consumer", "--port", str(free_port()),
                  "--data-dir", str(tmp_path / "data"),
                  env={"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                       "VIEWSTATS_TOPIC": f"exit-codes-{uuid.uuid4().hex[:8]}"})
    assert result.returncode == 1, result.stderr
    assert "the consumer stopped on an error; shutting down" in result.stderr
    assert "ConnectionError: the consumer lost its database for good" in result.stderr


def test_help_lists_the_exit_codes() -> None:
    usage = " ".join(_run(VIEWSTATS, "--help").stdout.split())
    assert "1 a bug, with its traceback" in usage
    assert "2 configuration or environment, in one line" in usage
    assert "3 the server could not start" in usage
    workers = " ".join(_run(VIEWSTATS, "collector", "--help").stdout.split())
    assert "one exiting with 2 or 3 stops them all" in workers

