"""A real single-node Apache Kafka broker (KRaft) for tests, benchmarks and local use.

    python -m viewstats.devtools.kafka_broker fetch            # jars into the cache (once)
    python -m viewstats.devtools.kafka_broker run --port 9092  # broker in the foreground

The jars come from Maven Central through `mvn`, because that is the one
source of Kafka this project's machines can reach (no tarball downloads).
Stdlib only (with viewstats.devtools.processes), so the CI and the test fixture can use it
from a checkout before any install.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from viewstats.devtools.processes import free_port, stop

KAFKA_VERSION = "4.1.1"
# kafka_2.13 pulls log4j-core but no SLF4J binding, and its own code logs
# through SLF4J 1.7: without this jar every broker log line goes to a NOP logger.
LOG4J_VERSION = "2.24.3"
# Pinned so a cold cache gets the same copy-dependencies behaviour everywhere.
DEPENDENCY_PLUGIN_VERSION = "3.8.1"
ARTIFACTS = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV = "VIEWSTATS_KAFKA_HOME"
MARKER = "fetched.ok"
HEAP = "-Xmx512m"
NODE_ID = 1
# Cold JVM + storage format + KRaft election take ~4-5 s here; the slack covers a
# loaded 2-core CI machine, not a normal start.
READY_TIMEOUT = 120.0

# Kafka 4 dropped Metadata v0-v3 (KIP-896); v4 is the oldest one it answers.
_API_METADATA, _METADATA_VERSION = 3, 4
_API_VERSIONS = 18

LOG4J2_PROPERTIES = """\
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/broker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
"""


def kafka_home() -> Path:
    """Folder holding pom.xml, libs/ and the log4j2 config for the pinned version."""
    override = os.environ.get(HOME_ENV)
    return Path(override) if override else REPO_ROOT / ".cache" / "kafka" / KAFKA_VERSION


def _pom() -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in ARTIFACTS
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.viewstats</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>{DEPENDENCY_PLUGIN_VERSION}</version>
  </plugin></plugins></build>
</project>
"""


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    # Parallel test sessions may share one cache; only one of them runs mvn.
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_jars() -> Path:
    """Return the libs folder, fetching it first unless a complete fetch is cached."""
    home = kafka_home()
    libs = home / "libs"
    pom = _pom()
    marker = home / MARKER
    with _locked(home):
        # The marker holds the pom, so changing a pinned version refetches.
        if marker.is_file() and marker.read_text() == pom and libs.is_dir():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("mvn not found on PATH: it is needed to fetch the Kafka jars")
        marker.unlink(missing_ok=True)
        (home / "pom.xml").write_text(pom)
        (home / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mvn failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(pom)
    return libs


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found (PATH or JAVA_HOME): Kafka 4 needs Java 17+")
    return found


def _cluster_id() -> str:
    # Same shape as Kafka's Uuid.randomUuid(): URL-safe base64 of 16 bytes, and
    # never starting with '-', which the CLI parsing would take for an option.
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # A static voter set (not `format --standalone`) keeps a formatted log
        # dir usable after a restart on a different controller port.
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        # 1 instead of 50/50 partitions: creating them is most of the wait
        # before the first consumer group or transaction on a 2-core machine.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a killed test run must not leave a 512 MB JVM behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def start_broker(port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """Format `log_dir` if new and start the broker; returns at once (see wait_until_ready).

    `log_dir` is a work folder: config, logs (broker.log, broker.out) and data/ go in it.
    """
    libs = ensure_jars()
    home = libs.parent
    log_dir = log_dir.resolve()
    data_dir = log_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    controller_port = free_port()
    config = log_dir / "server.properties"
    config.write_text(_server_properties(port, controller_port, data_dir))
    java = [
        _java(),
        HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={log_dir}",
        "-cp",
        str(libs / "*"),
    ]
    if not (data_dir / "meta.properties").exists():
        # C1 only: ~0.4 s less for this short-lived tool. The broker keeps the full JIT
        # (C1-only would start it ~1 s sooner but slow it down for benchmarks).
        quick = [java[0], "-XX:TieredStopAtLevel=1", *java[1:]]
        fmt = [*quick, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)]
        done = subprocess.run(fmt, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"storage format failed:\n{done.stdout}\n{done.stderr}")
    with (log_dir / "broker.out").open("ab") as out:
        return subprocess.Popen(
            [*java, "kafka.Kafka", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )


def log_tail(log_dir: Path, lines: int = 15) -> str:
    """Last lines of the broker's logs, for error messages (a temp log dir is gone after)."""
    parts = []
    for name in ("broker.out", "broker.log"):
        path = log_dir / name
        if path.is_file():
            # Stack frames bury the one ERROR line that says what went wrong.
            text = path.read_text(errors="replace").splitlines()
            tail = [line for line in text if line.strip() and not line[0].isspace()][-lines:]
            if tail:
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
    return "\n".join(parts)


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"viewstats-ready"
    header = struct.pack(">hhih", api_key, version, 1, len(client)) + client
    sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
    (size,) = struct.unpack(">i", _read(sock, 4))
    return _read(sock, size)[4:]  # drop the correlation id


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def _probe(host: str, port: int) -> bool:
    """ApiVersions, then Metadata: ready once the broker lists itself as alive."""
    with socket.create_connection((host, port), timeout=5) as sock:
        versions = _request(sock, _API_VERSIONS, 0, b"")
        if struct.unpack_from(">h", versions)[0] != 0:
            return False
        # topics=[] (no topics, just brokers), allow_auto_topic_creation=false
        meta = _request(sock, _API_METADATA, _METADATA_VERSION, struct.pack(">ib", 0, 0))
        (brokers,) = struct.unpack_from(">i", meta, 4)  # after throttle_time_ms
        return bool(brokers > 0)


def wait_until_ready(
    bootstrap: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> float:
    """Block until the broker answers a metadata request; returns the seconds waited."""
    host, _, port = bootstrap.rpartition(":")
    start = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before it was ready")
        try:
            if _probe(host, int(port)):
                return time.monotonic() - start
        except (OSError, struct.error) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"Kafka at {bootstrap} not ready after {timeout}s (last: {last!r})")


@contextlib.contextmanager
def running_broker(log_dir: Path, timeout: float = READY_TIMEOUT) -> Iterator[str]:
    """A broker on a free port of 127.0.0.1 working in `log_dir`, stopped when the block ends.

    Yields its bootstrap address once it is ready; RuntimeError when it cannot start or exits
    first, TimeoutError when it is not ready within `timeout` seconds (log_tail tells why).
    """
    port = free_port()
    proc = start_broker(port, log_dir)
    try:
        wait_until_ready(f"127.0.0.1:{port}", timeout, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


class _Stop(Exception):
    """Raised from the SIGTERM/SIGINT handler to leave whatever `run` is waiting on."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _run(port: int, log_dir: Path | None, timeout: float) -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kafka-")))
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc = start_broker(port, log_dir)
            took = wait_until_ready(f"127.0.0.1:{port}", timeout, proc)
            print(
                f"Kafka {KAFKA_VERSION} ready on 127.0.0.1:{port} in {took:.1f}s; logs: {log_dir}"
            )
            sys.stdout.flush()
            return proc.wait()
        except _Stop:
            # A second Ctrl-C must not cut the clean shutdown short; the timeout
            # of `stop` already bounds it.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if proc is not None:
                stop(proc)
            return 0
        except (RuntimeError, TimeoutError) as exc:
            if proc is not None:
                stop(proc)
            print(f"{exc}\n{log_tail(log_dir)}", file=sys.stderr)
            return 1
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help=f"fetch the Kafka {KAFKA_VERSION} jars into {HOME_ENV} or .cache")
    run = sub.add_parser("run", help="format storage and run the broker until SIGTERM/SIGINT")
    run.add_argument("--port", type=int, required=True, help="PLAINTEXT port on 127.0.0.1")
    run.add_argument("--log-dir", type=Path, help="work folder (default: a temp dir, removed)")
    run.add_argument("--timeout", type=float, default=READY_TIMEOUT,
                     help="seconds to wait for ready")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        start = time.monotonic()
        libs = ensure_jars()
        print(f"Kafka {KAFKA_VERSION} jars in {libs} ({time.monotonic() - start:.1f}s)")
        return 0
    return _run(args.port, args.log_dir, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
