"""Tooling for development, the tests and the benchmarks: ports, `viewstats` roles as child
processes, a pinned Kafka broker and its topics.

It sits in the product's namespace so that the demo, the tests and the benchmarks share one
copy; it imports nothing from tests/ or benchmarks/, nor pytest, so any of them may use it.
"""
