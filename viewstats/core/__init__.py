"""The base of the house: settings, storage, metrics, logging, keys, HTTP responses and the
event record. It imports nothing from the packages above it (a contract in pyproject.toml)."""
