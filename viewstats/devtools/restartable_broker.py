"""A Kafka broker of one's own, stopped with a real signal and started again: for the tests
that take a broker away (the session's is shared) and for the soak benchmark.

It keeps its port and its log dir across restarts: the clients reconnect to the address they
know, and the broker comes back with the same data, as a restarted one does.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from viewstats.devtools.kafka_broker import (
    READY_TIMEOUT,
    ensure_jars,
    log_tail,
    start_broker,
    wait_until_ready,
)
from viewstats.devtools.processes import free_port, stop


class RestartableBroker:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The running broker's process id; None while it is stopped."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> float:
        """Start it (on the same port and data as before); the seconds until it answered."""
        assert self._proc is None, "the broker is running"
        self._proc = start_broker(self.port, self.log_dir)
        try:
            return wait_until_ready(self.bootstrap, READY_TIMEOUT, self._proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{log_tail(self.log_dir)}") from exc

    def kill(self, signum: int) -> None:
        """Send `signum` (SIGTERM: a clean shutdown; SIGKILL: a crash) and wait for the exit."""
        assert self._proc is not None, "the broker is not running"
        self._proc.send_signal(signum)
        self._proc.wait(timeout=120)
        self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its connections open and answers nothing."""
        assert self._proc is not None, "the broker is not running"
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None, "the broker is not running"
        self._proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen process would not take SIGTERM
            stop(self._proc)
            self._proc = None


@contextmanager
def restartable_broker(log_dir: Path) -> Iterator[RestartableBroker]:
    """A started broker working in `log_dir`, stopped when the block ends."""
    ensure_jars()
    broker = RestartableBroker(log_dir)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
