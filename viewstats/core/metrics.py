"""Prometheus series of architecture §8, shared by every role a process runs.

One process runs one uvicorn worker, so the default registry is the process's own.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

EVENTS_ACCEPTED = Counter("viewstats_events_accepted", "Player events accepted by the collector")
EVENTS_REJECTED = Counter("viewstats_events_rejected",
                          "Player events refused by the collector, by reason (a request refused "
                          "whole - content_type, too_large, body - counts once)", ["reason"])
BATCH_ROWS = Histogram("viewstats_batch_rows", "Rows per insert into player_events",
                       buckets=(1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000))
INSERT_SECONDS = Histogram("viewstats_insert_seconds", "Time to insert one batch",
                           buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
HTTP_REFUSED = Counter("viewstats_http_refused", "Requests refused by the HTTP limits (size, "
                       "count, read time), by reason", ["reason"])
WRITE_FAILURES = Counter("viewstats_write_failures", "Inserts the database refused or could not "
                         "store (read-only or full disk, unreachable server)")
WRITES_FAILING = Gauge("viewstats_writes_failing", "1 while this process's writes fail, until "
                       "one succeeds again")
CONSUMER_LAG = Gauge("viewstats_consumer_lag", "Messages behind the partition's end",
                     ["partition"])
CONSUMER_STALLS = Counter("viewstats_consumer_stalls", "Times the liveness guard found the "
                          "consumer stalled and replaced its Kafka clients")
DEAD_LETTERED = Counter("viewstats_dead_lettered", "Undecodable messages sent to the DLQ")
# Timed around the whole request, answer written included, for every endpoint
# (viewstats/http_layers.py); the largest answers take seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                    10, 30)
QUERY_SECONDS = Histogram("viewstats_query_seconds", "Statistics endpoints' latency, by "
                          "endpoint (countries, views, hosts, popular) and status",
                          ["endpoint", "status"], buckets=_LATENCY_BUCKETS)
BEACON_SECONDS = Histogram("viewstats_beacon_seconds", "POST /events latency, by status",
                           ["status"], buckets=_LATENCY_BUCKETS)
QUERY_WAITING = Gauge("viewstats_query_waiting", "Engine queries waiting for a turn of their "
                      "client's budget (QUERY_CLIENT_CONCURRENCY)")
QUERY_REFUSED = Counter("viewstats_query_refused", "Requests the query budget refused, by reason "
                        "(429: queue_full, queue_wait; 503: the engine limit hit)", ["reason"])

SEALED_BYTES = Gauge("viewstats_sealed_bytes", "Bytes of sealed buckets the query API keeps in "
                     "memory (bounded by SEALED_MAX_MB)")
SEALED_LOOKUPS = Counter("viewstats_sealed_lookups", "Sealed-bucket lookups, by result (hit, or "
                         "miss: loaded from the database)", ["result"])


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
