"""A Kafka broker for a benchmark: the one at `--bootstrap`, or a private one for the run.

The private broker is the project's pinned single-node KRaft broker
(viewstats.devtools.kafka_broker) in a temporary log dir, stopped and removed when the block
ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from viewstats.devtools.kafka_broker import running_broker


@contextmanager
def kafka_bootstrap(bootstrap: str | None) -> Iterator[str]:
    """Yield `bootstrap` as is, or else the address of a broker started for this block."""
    if bootstrap:
        yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as log_dir, \
            running_broker(Path(log_dir)) as started:
        yield started
