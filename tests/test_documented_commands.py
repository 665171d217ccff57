"""What the README and the benchmarks' docstrings tell a user to type works, typed as written.

The commands are read from the documents themselves: every line of a fenced code block of
README.md, and every indented line of a benchmark module's docstring (benchmarks/*.py), whose
program is one a user runs (`make`, `viewstats`, `.venv/bin/viewstats`, `python`, `curl`), with
`\\` continuations joined. So a command documented tomorrow is run tomorrow, with no change here.

Each runs in a process of its own from the repository root, in the environment of a terminal
where the venv was activated (`.venv/bin` first on PATH) and nothing else was set up: none of
the platform's variables (VIEWSTATS_*, GEOIP_DB, CLICKHOUSE_URL, ...), none of make's or
pytest's. So it finds the GeoIP database and the player's assets only where a checkout set up
by `make` leaves them for every command (Settings.cache_dir).

What the test changes in a command is in OVERRIDES below, each with its reason: sizes made tiny
(a billion events becomes a few thousand), results and data dirs moved to temporary folders
(never the checkout's `data/` or `benchmarks/results/`), ports made free, and the documents'
placeholders (a broker `B`, a key `1$9f2c…`) filled with the test's own. A server
(`make run`, `viewstats run`, ...) is started, must answer /readyz with 200, and is stopped
with SIGTERM, after which it must exit 0.
Nothing about speed is asserted: the sizes are far too small for it to mean anything.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from benchmarks.consumer_throughput import produce
from tests.support.processes import key_token, serving
from tests.support.server_mode import clickhouse_url
from viewstats.devtools.processes import free_port
from viewstats.devtools.topics import create_topic
from viewstats.ingest.collector.kafka_sink import MAX_PENDING

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
# The programs a documented line is typed with; any other line of a code block is output,
# an HTTP request line, a diagram or a file tree.
PROGRAMS = frozenset({"make", "viewstats", ".venv/bin/viewstats", "python", "curl"})
# A role serves until stopped; the test starts it, waits for /readyz, then stops it.
SERVERS = frozenset({("make", "run"), *(("viewstats", role) for role in (
    "run", "collector", "consumer", "api"))})
COMMAND_TIMEOUT = 300.0
READY_TIMEOUT = 120.0  # `make run` may first make the player's test stream with ffmpeg
# A user's terminal keeps these; everything else of this process's environment is left out.
TERMINAL = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "XDG_CACHE_HOME",
            "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# Two of the chunks benchmarks.consumer_throughput produces in (the Kafka sink's bound on
# events awaiting acknowledgement), so that a chunk over the bound fails here; still a few
# seconds of work for every benchmark that takes --events.
EVENTS = 2 * MAX_PENDING


@dataclass(frozen=True)
class Override:
    """What the test changes in a documented command. Placeholders in braces are the test's
    (see FIXTURES); `{typed_name}` is the file name of the value the document typed."""

    flags: Mapping[str, str] = field(default_factory=dict)  # set: the typed value, or added
    values: Mapping[str, str] = field(default_factory=dict)  # a typed flag's value only
    add: tuple[str, ...] = ()  # words appended
    swap: Mapping[str, str] = field(default_factory=dict)  # text inside typed words -> this
    marks: tuple[str, ...] = ()  # the services it uses, beyond what its placeholders say
    # Why it only gets a dry run (`make -n`, or `--help` for a module): it is too long for CI.
    dry: str = ""


# The query benchmarks' mix and settle modes as tests/test_benchmarks.py runs them.
MIX_SIZES = {"--mix-seconds": "0.2", "--mix-requests": "30", "--meet-seconds": "0",
             "--settle-seconds": "1", "--settle-requests": "60"}
# Keyed by the first words of a command; every entry whose words begin the command applies,
# shorter prefixes first.
OVERRIDES: Mapping[str, Override] = {
    "make test": Override(dry="it is the suite this test belongs to"),
    # Runs of a quarter to a whole hour that issue 18 keeps out of CI by design.
    "python -m benchmarks.outage_loop": Override(
        dry="loops the outage tests for tens of minutes; by hand, not in CI"),
    "python -m benchmarks.soak": Override(dry="an hour of traffic and faults; not in CI"),
    # The checkout's own data dir and port 8000 may be in use (a developer's `make run`).
    "make run": Override(add=("PORT={port}", "DATA_DIR={data}"), marks=("chdb",)),
    ".venv/bin/viewstats run": Override(flags={"--data-dir": "{data}", "--port": "{port}"},
                                        marks=("chdb",)),
    ".venv/bin/viewstats keys": Override(flags={"--data-dir": "{data}"}),
    ".venv/bin/viewstats demo": Override(flags={"--data-dir": "{data}", "--players": "10"},
                                         marks=("chdb",)),
    # Against a platform the test serves, with a key of its own; --fail: a 401 or 500 must
    # fail the command, as it would fail the user reading it.
    "curl": Override(swap={"127.0.0.1:8000": "{address}", "1$9f2c…": "{token}"},
                     add=("--fail", "--silent", "--show-error"), marks=("chdb",)),
    # Results go where the report test reads them, never to the checkout's benchmarks/results.
    # This checkout's collector on both sides: the typed other checkout is the developer's. One
    # open-loop rate, which any machine keeps: the typed ones are for a measurement.
    "python -m benchmarks.collector_throughput": Override(
        flags={"--seconds": "1", "--rounds": "1", "--warmup": "1"},
        values={"--out": "{results}/{typed_name}", "--before": ".", "--rate": "10"}),
    "python -m benchmarks.collector_throughput --sink": Override(
        flags={"--bootstrap": "{kafka}"}, marks=("chdb",)),
    "python -m benchmarks.consumer_throughput": Override(
        flags={"--events": str(EVENTS), "--bootstrap": "{kafka}"},
        values={"--topic": "{topic}", "--clickhouse-url": "{clickhouse}"}, marks=("chdb",)),
    "python -m benchmarks.dedup_window_memory": Override(
        flags={"--entries": "1000"}, values={"--out": "{results}/{typed_name}"}),
    "python -m benchmarks.freshness": Override(
        flags={"--beacons": "5"}, values={"--out": "{results}/{typed_name}"}, marks=("chdb",)),
    "python -m benchmarks.freshness --kafka": Override(flags={"--bootstrap": "{kafka}"}),
    "python -m benchmarks.generate": Override(
        flags={"--data-dir": "{data}", "--events": str(EVENTS)}, marks=("chdb",)),
    # The sizes tests/test_benchmarks.py runs them at, on data generated for this module; this
    # checkout's API on both sides of a before/after (the typed other checkout is the
    # developer's).
    "python -m benchmarks.query_latency": Override(
        flags={"--data-dir": "{bench}", "--requests": "20", "--cold-runs": "1",
               "--cold-warmup": "1", "--checks": "1", "--raw-runs": "1", "--floor-runs": "20",
               **MIX_SIZES},
        values={"--out": "{results}/{typed_name}", "--api-source": "."}, marks=("chdb",)),
    # One query of the family: each costs its cells' fresh API processes.
    "python -m benchmarks.statistics_latency": Override(
        flags={"--data-dir": "{bench}", "--queries": "views", "--requests": "3",
               "--cold-runs": "1", "--cold-warmup": "1", "--checks": "1", "--floor-runs": "20",
               **MIX_SIZES},
        values={"--out": "{results}/{typed_name}", "--api-source": "."}, marks=("chdb",)),
    # This checkout's API on both sides: the typed other checkout is the developer's.
    "python -m benchmarks.fairness": Override(
        flags={"--data-dir": "{bench}", "--seconds": "1", "--windows": "400",
               "--heavy-concurrency": "4"},
        values={"--out": "{results}/{typed_name}", "--before-source": "."}, marks=("chdb",)),
    # Its own data dir: its beacons must not land in the data the query benchmarks check.
    "python -m benchmarks.beacon_under_reads": Override(
        flags={"--data-dir": "{data}", "--events": str(EVENTS), "--seconds": "1",
               "--warmup": "0.5", "--settle": "0.2", "--readers": "2", "--max-rows": "50"},
        values={"--out": "{results}/{typed_name}"}, marks=("chdb",)),
    # Small answers; the server run reads the test endpoint.
    "python -m benchmarks.columnar_reads": Override(
        flags={"--rows": "1000", "--runs": "1"},
        values={"--out": "{results}/{typed_name}", "--clickhouse-url": "{clickhouse}"},
        marks=("chdb",)),
    # This checkout's code on both sides: the typed other checkout is the developer's.
    "python -m benchmarks.insert_cost": Override(
        flags={"--rounds": "1", "--inserts": "2", "--warmup": "0"},
        values={"--out": "{results}/{typed_name}", "--before": "."}, marks=("chdb",)),
    "python -m benchmarks.user_agent_cost": Override(
        flags={"--beacons": "200", "--rounds": "1"}, values={"--out": "{results}/{typed_name}"}),
    # As typed it rewrites the checkout's benchmarks/RESULTS.md and plots.
    "python -m benchmarks.report": Override(
        flags={"--results": "{results}", "--out": "{tmp}/RESULTS.md", "--plots": "{tmp}/plots"}),
}
# The placeholders made by a fixture, and which (only for the commands that use them); the
# others ({data}, {port}, {tmp}) are each test's own.
FIXTURES = {"results": "results", "bench": "bench", "kafka": "kafka", "topic": "topic",
            "clickhouse": "clickhouse", "address": "platform", "token": "platform"}
# The services behind a placeholder, as markers.
SERVICES = {"kafka": "kafka", "topic": "kafka", "clickhouse": "chdb", "bench": "chdb",
            "address": "chdb", "token": "chdb"}


@dataclass(frozen=True)
class Documented:
    source: str  # the file that documents it
    typed: tuple[str, ...]  # its words, as a shell splits them

    @property
    def text(self) -> str:
        return shlex.join(self.typed)

    def overrides(self) -> list[Override]:
        return [override for prefix, override in sorted(OVERRIDES.items())
                if self.typed[:len(prefix.split())] == tuple(prefix.split())]

    def words(self) -> list[str]:
        """The command the test runs, its placeholders still in braces."""
        if any(override.dry for override in self.overrides()):
            # What it would run, or its options: the target exists, the module parses.
            if self.typed[0] == "make":
                return ["make", "-n", *self.typed[1:]]
            return [*self.typed[:3], "--help"]
        words = list(self.typed)
        for override in self.overrides():
            for text, replacement in override.swap.items():
                words = [word.replace(text, replacement) for word in words]
            values = {**override.values, **override.flags}
            words = [values[flag].replace("{typed_name}", Path(word).name)
                     if flag in values else word
                     for flag, word in zip(["", *words], words, strict=False)]
            for flag, value in override.flags.items():
                if flag not in words:
                    words += [flag, value]
            words += override.add
        return words

    def serves(self) -> bool:
        return (self.typed[0].removeprefix(".venv/bin/"), *self.typed[1:2]) in SERVERS

    def placeholders(self) -> set[str]:
        return {name for name in FIXTURES if any(f"{{{name}}}" in w for w in self.words())}

    def marks(self) -> list[pytest.MarkDecorator]:
        names = {"slow", *(mark for o in self.overrides() for mark in o.marks),
                 *(SERVICES[name] for name in self.placeholders() if name in SERVICES)}
        return [getattr(pytest.mark, name) for name in sorted(names)]


def command_lines(text: str) -> Iterator[tuple[str, ...]]:
    """The commands in `text`: lines, `\\`-continued ones joined, whose program is in
    PROGRAMS, split as a shell splits them (comments dropped)."""
    for line in re.sub(r"\\\n", " ", text).splitlines():
        try:
            words = tuple(shlex.split(line, comments=True))
        except ValueError:  # unbalanced quotes: prose or output, not a command
            continue
        if words and words[0] in PROGRAMS:
            yield words


def readme_commands() -> list[Documented]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return [Documented("README.md", words) for block in blocks for words in command_lines(block)]


def benchmark_commands() -> list[Documented]:
    found = []
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        source = path.relative_to(REPO).as_posix()
        found += [Documented(source, words) for words in command_lines(docstring)
                  if words[:3] == ("python", "-m", f"benchmarks.{path.stem}")]
    return found


DOCUMENTED = readme_commands() + benchmark_commands()


def terminal_env() -> dict[str, str]:
    """A terminal after `. .venv/bin/activate`, with nothing of this process's configuration."""
    kept = {name: os.environ[name] for name in TERMINAL if name in os.environ}
    return {**kept, "VIRTUAL_ENV": str(VENV_BIN.parent),
            "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", os.defpath)])}


def _run(words: list[str]) -> None:
    done = subprocess.run(words, cwd=REPO, env=terminal_env(), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (
        f"{shlex.join(words)} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-5000:]}")


def _serve(words: list[str], port: str, log: Path) -> None:
    """Start the server, wait until /readyz answers 200, stop it with SIGTERM, as an
    orchestrator does, and find that it exits 0: a clean stop."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(words, cwd=REPO, env=terminal_env(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while (status := _readyz(port)) != 200:
            output = log.read_text(errors="replace")[-5000:]
            assert proc.poll() is None, f"{shlex.join(words)} exited {proc.returncode}:\n{output}"
            assert time.monotonic() < deadline, (
                f"{shlex.join(words)}: /readyz answered {status} for {READY_TIMEOUT:g} s:\n"
                f"{output}")
            time.sleep(0.2)
    finally:
        # make itself is left unsignalled: signalled, it exits by the signal and reports
        # nothing of the server's exit, while waiting it exits 0 only if the server did.
        if proc.poll() is None:
            for pid in _children(proc.pid) if words[0] == "make" else [proc.pid]:
                os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, (f"{shlex.join(words)} exited {proc.returncode} after SIGTERM:"
                                  f"\n{log.read_text(errors='replace')[-5000:]}")


def _children(pid: int) -> list[int]:
    """The processes `pid` started (for `make run`, the server)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _readyz(port: str) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
    except httpx.TransportError:
        return None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the benchmarks' --out files go, as benchmarks/results/ for the report."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated events for the query benchmarks (their docstrings' `data-bench`)."""
    data = tmp_path_factory.mktemp("bench") / "data"
    _run(["python", "-m", "benchmarks.generate", "--data-dir", str(data), "--events",
          str(EVENTS)])
    return data


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic an earlier run produced (`--topic T`), with EVENTS events."""
    bootstrap = request.getfixturevalue("kafka").bootstrap
    name = f"documented-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(bootstrap, name, 2))
    produce(bootstrap, name, EVENTS)
    return name


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[str]:
    """The test ClickHouse endpoint (`--clickhouse-url`)."""
    with clickhouse_url(tmp_path / "clickhouse", tmp_path / "clickhouse.log") as url:
        yield url


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A served platform and a key of it (the README's 127.0.0.1:8000 and `1$9f2c…`)."""
    data = tmp_path / "platform"
    token = key_token(data, 17)  # before the start: a running server reloads keys every 2 s
    with serving("run", data) as (base, _):
        yield base.removeprefix("http://"), token


def _values(documented: Documented, request: pytest.FixtureRequest,
            tmp_path: Path) -> dict[str, str]:
    """The test's value of each placeholder the command uses."""
    values = {"data": str(tmp_path / "data"), "port": str(free_port()), "tmp": str(tmp_path)}
    for name in documented.placeholders():
        value = request.getfixturevalue(FIXTURES[name])
        if name == "kafka":
            value = value.bootstrap
        elif FIXTURES[name] == "platform":
            value = value[("address", "token").index(name)]
        values[name] = str(value)
    return values


@pytest.mark.parametrize("documented", [
    pytest.param(d, marks=d.marks(), id=f"{d.source}: {d.text}") for d in DOCUMENTED])
def test_documented_command_works(documented: Documented, request: pytest.FixtureRequest,
                                  tmp_path: Path) -> None:
    values = _values(documented, request, tmp_path)
    words = [re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[0]), word)
             for word in documented.words()]
    if documented.serves():
        _serve(words, values["port"], tmp_path / "server.log")
    else:
        _run(words)


def test_the_documents_commands_are_found() -> None:
    """The parser finds what a reader sees: the README's setup, key and query commands and each
    benchmark's examples, and no output or request line."""
    typed = {d.text for d in DOCUMENTED}
    assert {"make run", "make test", ".venv/bin/viewstats keys create --client-id 17"} <= typed
    assert any(t.startswith("curl ") for t in typed)
    assert {d.source for d in benchmark_commands()} >= {
        f"benchmarks/{name}.py" for name in ("beacon_under_reads", "collector_throughput",
                                              "consumer_throughput", "fairness", "freshness",
                                              "generate", "query_latency", "report",
                                              "statistics_latency")}
    assert list(command_lines("    python -m benchmarks.x --a 1 \\\n        --b 'q{w}'  # c\n"
                              "GET /path\n# python -m no\n")) == [
        ("python", "-m", "benchmarks.x", "--a", "1", "--b", "q{w}")]
