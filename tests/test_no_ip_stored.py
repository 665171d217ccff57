"""No viewer's IP is stored (architecture §3, §18): after events from known addresses went
through a real `viewstats run`, on both write paths, none of those addresses is found in any
column of any table (searched by SQL), in the process's logs, or in the Kafka messages; yet
their viewers were counted, by the keyed hash that stands for them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from tests.support.kafka import KafkaBroker
from tests.support.processes import key_token, serving
from viewstats.devtools.topics import create_topic

pytestmark = [pytest.mark.chdb, pytest.mark.slow]

CLIENT = 17
# Spelled as a log line, a column or a message would spell them; documentation ranges, and one
# address of each family that the test GeoIP database knows.
IPS = ("203.0.113.77", "198.51.100.203", "2001:db8::5", "1.1.1.7", "81.2.69.160")
UNIQS = "/streaming/statistics/uniqs"
VIDEO = "v-no-ip-7"

# Every column of every table (views and materialized views hold nothing of their own), cast
# to text and searched for each address, in a process of its own: the server owned the path.
_SEARCH = """
import json, sys
from pathlib import Path
from viewstats.core.storage.embedded import EmbeddedStorage
storage = EmbeddedStorage(Path(sys.argv[1]), 1)
ips = json.loads(sys.argv[2])
found, searched = [], 0
for table, column in storage.query(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase() AND table IN "
        "(SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT LIKE '%View')"):
    cast = f"toString(finalizeAggregation(`{column}`))" if table.startswith("viewers_") \\
        and column == "viewers" else f"toString(`{column}`)"
    for ip in ips:
        n = storage.query(f"SELECT count() FROM `{table}` "
                          f"WHERE position({cast}, {{ip:String}}) > 0", {"ip": ip})[0][0]
        searched += 1
        if n:
            found.append([table, column, ip, int(n)])
print(json.dumps({"found": found, "searched": searched}))
storage.close()
"""


def _send(base: str) -> None:
    with httpx.Client(base_url=base) as http:
        for ip in IPS:
            view = str(uuid.uuid4())
            body = [{"event": event, "client_id": CLIENT, "video_id": VIDEO, "type": "vod",
                     "view_id": view} for event in ("init", "start", "watch")]
            # The access log would print the peer's address, and a trusted proxy's
            # X-Forwarded-For stands for it.
            response = http.post("/events", json=body, headers={"X-Forwarded-For": ip})
            assert response.status_code == 202, response.text


def _unique_viewers(base: str, token: str) -> int:
    response = httpx.get(base + UNIQS, headers={"Authorization": f"apikey {token}"},
                         params={"date_from": "2020-01-01", "date_to": "2099-12-31"})
    assert response.status_code == 200, response.text
    return int(response.json()["data"][0]["unique_ips"])


def _searched_tables(data: Path) -> list[list[object]]:
    """Where an address was found: [table, column, address, rows]. The video id sent with them
    is searched too, and must be found, so that a search that finds nothing is no proof."""
    out = subprocess.run([sys.executable, "-c", _SEARCH, str(data / "clickhouse"),
                          json.dumps([*IPS, VIDEO])], capture_output=True, text=True,
                         timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["searched"] > 50 * len(IPS), "every column of every table was searched"
    found: list[list[object]] = result["found"]
    assert ["player_events", "video_id", VIDEO, 3 * len(IPS)] in found
    return [hit for hit in found if hit[2] != VIDEO]


async def _messages(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return [b"%s %s %r" % (m.key or b"", m.value or b"", m.headers)
                for records in batches.values() for m in records]
    finally:
        await consumer.stop()


def _assert_no_address(text: str, where: str) -> None:
    assert not [ip for ip in IPS if ip in text], where


def test_no_address_is_stored_embedded(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "run.log"
    token = key_token(data, CLIENT)
    with serving("run", data, log=log) as (base, _):
        _send(base)
        assert _unique_viewers(base, token) == len(IPS)
    assert _searched_tables(data) == []
    _assert_no_address(log.read_text(errors="replace"), "the log")


@pytest.mark.kafka
def test_no_address_is_stored_through_kafka(kafka: KafkaBroker, tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "run.log"
    token = key_token(data, CLIENT)
    topic = f"events-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(kafka.bootstrap, topic, partitions=2))
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "VIEWSTATS_TOPIC": topic,
           "VIEWSTATS_CONSUMER_GROUP": f"group-{topic}"}
    with serving("run", data, env=env, log=log) as (base, _):
        _send(base)
        messages = asyncio.run(_messages(kafka.bootstrap, topic))
        assert len(messages) == 3 * len(IPS)
        _assert_no_address(b"\n".join(messages).decode(errors="replace"), "the messages")
        for _ in range(120):  # the consumer may still be writing
            if _unique_viewers(base, token) == len(IPS):
                break
            time.sleep(0.5)
        assert _unique_viewers(base, token) == len(IPS)
    assert _searched_tables(data) == []
    _assert_no_address(log.read_text(errors="replace"), "the log")
