"""A Kafka broker of a test's own, which the test stops with a real signal and starts again.

The session's broker (tests/support/kafka.py) is shared, so a test that takes a broker away
needs its own. It lives in viewstats.devtools.restartable_broker, which the soak benchmark
(benchmarks/soak.py) shares; the tests take it from here.
"""

from __future__ import annotations

from viewstats.devtools.restartable_broker import RestartableBroker, restartable_broker

__all__ = ["RestartableBroker", "restartable_broker"]
