"""A Kafka broker for a benchmark: the one at `--bootstrap`, or a private one for the run.

The private broker is the project's pinned single-node KRaft broker (scripts/kafka_broker.py)
in a temporary log dir, stopped and removed when the block ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.kafka_broker import free_ports, start_broker, stop_broker, wait_until_ready

# A cold JVM on a busy 2-core machine; a normal start takes ~5 s.
READY_TIMEOUT = 120.0


@contextmanager
def kafka_bootstrap(bootstrap: str | None) -> Iterator[str]:
    """Yield `bootstrap` as is, or else the address of a broker started for this block."""
    if bootstrap:
        yield bootstrap
        return
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as log_dir:
        proc = start_broker(port, Path(log_dir))
        try:
            wait_until_ready(f"127.0.0.1:{port}", READY_TIMEOUT, proc)
            yield f"127.0.0.1:{port}"
        finally:
            stop_broker(proc)
