"""Tooling for development, the tests and the benchmarks: ports, `viewstats` roles as child
processes, a pinned Kafka broker (also one to kill and start again) and its topics, and a
read-only mount over a data dir for storage faults.

It sits in the product's namespace so that the demo, the tests and the benchmarks share one
copy; it imports nothing from tests/ or benchmarks/, nor pytest, so any of them may use it.
"""
