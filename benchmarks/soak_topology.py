"""The platform a soak runs (benchmarks.soak), as real processes on a broker of its own.

- `server`: `viewstats collector`, `viewstats consumer` and `viewstats api`, each a process of
  its own, on the test ClickHouse HTTP endpoint (tests/support/clickhouse_http.py, chDB in a
  process of its own, run as a program) through CLICKHOUSE_URL, and Kafka.
- `run`: one `viewstats run` with KAFKA_BOOTSTRAP_SERVERS, on the embedded chDB.

The broker is viewstats.devtools.restartable_broker's, so it can be killed and started again on
its port and log dir. A role killed with SIGKILL is started again on its port, with a new log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from viewstats.core.settings import Settings
from viewstats.core.storage import open_storage
from viewstats.devtools.processes import VIEWSTATS, free_port, serving, stop, wait_for_http
from viewstats.devtools.restartable_broker import RestartableBroker, restartable_broker

REPO = Path(__file__).resolve().parents[1]
TOPOLOGIES = ("server", "run")
STORED_SQL = ("SELECT toString(view_id), count() FROM player_events "
              "WHERE client_id = {client:UInt32} AND event = 'watch' GROUP BY view_id")


class Role:
    """`viewstats <role>` on a fixed port: started, killed with SIGKILL, started again."""

    def __init__(self, role: str, data_dir: Path, env: dict[str, str], logs: Path) -> None:
        self.role, self.data_dir, self.env, self.logs = role, data_dir, env, logs
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.starts = 0
        self.restarting = False  # killed on purpose, until started again
        self._stack = ExitStack()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None or self._proc.poll() is not None else self._proc.pid

    @property
    def log(self) -> Path:
        return self.logs / f"{self.role}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            _, self._proc = self._stack.enter_context(serving(
                self.role, self.data_dir, port=self.port, env=self.env, log=self.log))
        finally:
            self.restarting = False

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill ends a process: nothing is flushed."""
        assert self._proc is not None, f"{self.role} is not running"
        self.restarting = True
        self._proc.kill()
        self._proc.wait()
        self.close()

    def exited(self) -> int | None:
        """The exit code of a process that ended by itself (not killed here); else None."""
        if self.restarting or self._proc is None:
            return None
        return self._proc.poll()

    @property
    def down(self) -> bool:
        """Not running, and nobody is starting it (a start failed, or it exited and was
        closed)."""
        return not self.restarting and self._proc is None

    def close(self) -> None:
        """SIGTERM (a clean stop), unless it is stopped already."""
        self._stack.close()
        self._proc = None


@dataclass
class Topology:
    kind: str
    work: Path
    broker: RestartableBroker
    collector: Role
    consumer: Role  # the role killed by the consumer fault: in `run`, the whole process
    api: Role
    read_only_path: Path  # the database's data: the read-only fault mounts over it
    token: str = ""
    endpoint_url: str | None = None
    infra: dict[str, int | None] = field(default_factory=dict)  # endpoint's pid

    @property
    def roles(self) -> list[Role]:
        return list(dict.fromkeys((self.collector, self.consumer, self.api)))

    def processes(self) -> dict[str, int | None]:
        """Each process's current pid (None while it is down), the platform's first."""
        return {**{r.role: r.pid for r in self.roles}, **self.infra, "broker": self.broker.pid}

    @property
    def platform(self) -> tuple[str, ...]:
        """The processes of the platform itself (not the broker, not the test endpoint)."""
        return tuple(r.role for r in self.roles)

    def stored(self, client_id: int) -> Counter[str]:
        """How many times the database holds each view of `client_id`. In `run` the process
        is stopped first: the embedded database is one process's."""
        if self.endpoint_url is None:
            self.consumer.close()
        settings = Settings.from_env({"CLICKHOUSE_URL": self.endpoint_url or ""},
                                     data_dir=self.consumer.data_dir)
        storage = open_storage(settings)
        try:
            rows = storage.query(STORED_SQL, {"client": client_id})
        finally:
            storage.close()
        return Counter({str(view): int(count) for view, count in rows})


def viewstats(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*VIEWSTATS, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, check=False)
    if done.returncode:
        raise RuntimeError(f"viewstats {' '.join(args)}: exit {done.returncode}\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def _endpoint(path: Path, log: Path) -> Iterator[tuple[str, int]]:
    """The test ClickHouse endpoint on `path`: its URL and pid."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.clickhouse_http",
                                 "--path", str(path), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/ping", proc.poll)
        yield url, proc.pid
    finally:
        stop(proc)


@contextmanager
def topology(kind: str, work: Path, client_id: int) -> Iterator[Topology]:
    """The started platform of `kind` in `work`, with a key for `client_id`; all of it is
    stopped when the block ends (SIGTERM)."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        broker = stack.enter_context(restartable_broker(work / "kafka"))
        # PYTHONFAULTHANDLER: a process that crashes in native code says where, in its log.
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "PYTHONFAULTHANDLER": "1"}
        if kind == "server":
            url, endpoint_pid = stack.enter_context(
                _endpoint(work / "clickhouse", logs / "endpoint.log"))
            env["CLICKHOUSE_URL"] = url
            viewstats("migrate", "--data-dir", str(work / "api"), env=env)
            collector, consumer, api = (Role(name, work / name, env, logs)
                                        for name in ("collector", "consumer", "api"))
            found = Topology(kind, work, broker, collector, consumer, api, work / "clickhouse",
                             endpoint_url=url, infra={"endpoint": endpoint_pid})
        else:
            run = Role("run", work / "data", env, logs)
            found = Topology(kind, work, broker, run, run, run,
                             Settings.from_env({}, data_dir=run.data_dir).chdb_path)
        found.token = viewstats("keys", "create", "--client-id", str(client_id),
                                "--data-dir", str(found.api.data_dir),
                                env=env).strip().splitlines()[-1]
        for role in found.roles:
            stack.callback(role.close)
            role.start()
        yield found
