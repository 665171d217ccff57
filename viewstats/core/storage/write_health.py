"""Whether this process can write to the database: what the collector's 503s, `/readyz`, the
log and `/metrics` all read while a disk is read-only or full, or a server is unreachable.

Every insert reports its outcome here. The first failure of a burst logs one error line and
starts a probe: a one-row insert into `write_probe` every `PROBE_INTERVAL_S`, so the process
notices by itself that the fault cleared even when no traffic arrives (a load balancer stops
sending it any once `/readyz` fails). The first success after a burst logs one line too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from viewstats.core.metrics import WRITE_FAILURES, WRITES_FAILING

log = logging.getLogger(__name__)
PROBE_INTERVAL_S = 1.0
RETRY_AFTER_S = 1  # what a refused writer is told; a probe runs at least this often


class WritesFailing(RuntimeError):
    """The last write to the database failed; no write has succeeded since."""


class WriteHealth:
    def __init__(self, probe: Callable[[], object], *,
                 interval_s: float = PROBE_INTERVAL_S) -> None:
        self._probe, self._interval_s = probe, interval_s
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic time of the burst's first failure
        self._failures = 0
        self._timer: threading.Timer | None = None
        self._closed = False

    @property
    def failing(self) -> bool:
        return self._since is not None

    def check(self) -> None:
        """Raise `WritesFailing` while writes fail (for /readyz)."""
        if self._since is not None:
            raise WritesFailing(f"{self._failures} writes failed in the last "
                                f"{time.monotonic() - self._since:.1f} s")

    def succeeded(self) -> None:
        with self._lock:
            if self._since is None:
                return
            log.warning("writes to the database succeed again, after %.1f s and %d failed "
                        "writes", time.monotonic() - self._since, self._failures)
            self._since, self._failures = None, 0
            WRITES_FAILING.set(0)

    def failed(self, error: BaseException) -> None:
        with self._lock:
            WRITE_FAILURES.inc()
            self._failures += 1
            if self._since is None:
                self._since = time.monotonic()
                WRITES_FAILING.set(1)
                log.error("writes to the database fail: %s. Writers answer 503 and do not "
                          "commit until a write succeeds; probing every %.1f s",
                          error, self._interval_s)
            self._schedule_probe()

    def _schedule_probe(self) -> None:
        if self._closed or (self._timer is not None and self._timer.is_alive()):
            return
        self._timer = threading.Timer(self._interval_s, self._run_probe)
        self._timer.daemon = True
        self._timer.start()

    def _run_probe(self) -> None:
        # The probe is an insert, so its own outcome lands in succeeded() or failed(); the
        # latter schedules the next probe once this timer's thread has ended.
        with self._lock:
            self._timer = None
        if self.failing and not self._closed:
            with contextlib.suppress(Exception):  # counted and logged through failed()
                self._probe()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
