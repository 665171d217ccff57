"""The smaller findings of issue 19 and a gateway's needs, each sent as found to a real
`viewstats run` over HTTP (raw sockets where no HTTP client would send the request)."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import socket
import string
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import key_token, serving
from viewstats.query_api.filters import GROUP_FIELDS

pytestmark = [pytest.mark.chdb, pytest.mark.slow]

WINDOW = {"date_from": "2020-01-01", "date_to": "2099-12-31"}
STATISTICS = "/streaming/statistics/"
NOT_HOSTS = ["<img src=x onerror=alert(1)>.example", "sp ace.example", "a\"b'c.example"]


class Platform:
    def __init__(self, base: str, tokens: dict[int, str]) -> None:
        self.base, self.tokens = base, tokens
        self.http = httpx.Client(base_url=base, timeout=30)

    def get(self, client: int, endpoint: str, **params: str) -> httpx.Response:
        return self.http.get(STATISTICS + endpoint, params={**WINDOW, **params},
                             headers={"Authorization": f"apikey {self.tokens[client]}"})

    def rows(self, client: int, endpoint: str, **params: str) -> list[dict[str, object]]:
        response = self.get(client, endpoint, **params)
        assert response.status_code == 200, response.text
        rows: list[dict[str, object]] = response.json()["data"]
        return rows

    def beacon(self, client: int, headers: dict[str, str], **fields: str) -> None:
        """One watch event, answered 202 (so stored: embedded, 202 follows the insert)."""
        event = {"event": "watch", "client_id": client, "video_id": "v-1", "type": "vod",
                 "view_id": str(uuid.uuid4()), **fields}
        response = self.http.post("/events", content=json.dumps(event),
                                  headers={"Content-Type": "text/plain", **headers})
        assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("hardening") / "data"
    tokens = {client: key_token(data, client) for client in (31, 32, 33, 34)}
    with serving("run", data) as (base, _):
        platform = Platform(base, tokens)
        yield platform
        platform.http.close()


def test_host_filters_ignore_case(platform: Platform) -> None:
    for _ in range(8):
        platform.beacon(31, {"Origin": "https://a.example"})
    for endpoint in ("views", "countries"):
        lower = platform.rows(31, endpoint, host="a.example")
        assert sum(int(str(row["views"])) for row in lower) == 8
        assert platform.rows(31, endpoint, host="A.EXAMPLE") == lower


def test_what_is_no_host_name_counts_under_the_empty_host(platform: Platform) -> None:
    player_page = platform.base  # the player's own page may name its frame's page
    for bad in NOT_HOSTS:
        platform.beacon(32, {"Origin": f"http://{bad}"})
        platform.beacon(32, {"Referer": f"http://{bad}/page"})
        platform.beacon(32, {"Origin": player_page}, embed_url=f"http://{bad}/page")
    assert platform.rows(32, "hosts") == [{"views": 3 * len(NOT_HOSTS), "host": ""}]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/streaming/statistics/popular/"), ("POST", "/events/"), ("GET", "/healthz/"),
    ("GET", "/openapi.json/"), ("GET", "/metrics/")])
def test_no_redirect_takes_the_host_header(platform: Platform, method: str, path: str) -> None:
    response = platform.http.request(method, path, headers={"Host": "evil.example"},
                                     content=b"{}" if method == "POST" else None)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"data": [], "errors": ["Not Found"]}


def test_an_error_list_is_capped(platform: Platform) -> None:
    names = ("".join(letters) for size in (2, 3)
             for letters in itertools.product(string.ascii_lowercase, repeat=size))
    group = ",".join(itertools.islice(names, 2600))[:7_900].rpartition(",")[0]
    url = f"{STATISTICS}views?date_from=2020-01-01&date_to=2099-12-31&group={group}"
    assert 7_800 < len(url) < 8 * 1024  # commas unescaped, as the finding sent them
    response = platform.http.get(url, headers={
        "Authorization": f"apikey {platform.tokens[33]}"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == 21
    assert re.fullmatch(r"\.\.\. and \d+ more errors", errors[-1])
    unknown = set(group.split(",")) - set(GROUP_FIELDS)
    assert len(unknown) == 20 + int(errors[-1].split()[2]) > 2000
    assert len(response.content) < 4096


def test_latency_is_measured_for_every_endpoint(platform: Platform) -> None:
    platform.beacon(33, {})
    for endpoint in ("countries", "views", "hosts", "popular"):
        platform.rows(33, endpoint)
    assert platform.get(33, "views", group="ip").status_code == 400
    metrics = platform.http.get("/metrics").text
    for endpoint in ("countries", "views", "hosts", "popular"):
        assert re.search(rf'^viewstats_query_seconds_count{{endpoint="{endpoint}",'
                         rf'status="200"}} [1-9]', metrics, re.MULTILINE), endpoint
    assert re.search(r'^viewstats_query_seconds_count{endpoint="views",status="400"} [1-9]',
                     metrics, re.MULTILINE)
    assert re.search(r'^viewstats_beacon_seconds_count{status="202"} [1-9]', metrics,
                     re.MULTILINE)


def raw(base: str, data: bytes) -> tuple[int, dict[str, object]]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower()
    return int(head.split()[1]), json.loads(body)


def test_a_malformed_request_gets_the_json_error_shape(platform: Platform) -> None:
    status, body = raw(platform.base, b"GET /healthz HTTP/1.1\r\nHost t\r\n\r\n")
    assert (status, body) == (400, {"data": [], "errors": [
        "request: not a valid HTTP/1.1 request"]})


def test_an_unsupported_transfer_coding_gets_501(platform: Platform) -> None:
    body = gzip.compress(b'{"event":"watch"}')
    status, answer = raw(platform.base, b"POST /events HTTP/1.1\r\nHost: t\r\n"
                         b"Content-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                         + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert (status, answer) == (501, {"data": [], "errors": [
        "transfer-encoding: only chunked is supported"]})


def test_answers_over_1_kib_are_gzipped_when_accepted(platform: Platform) -> None:
    for video in range(40):
        platform.beacon(34, {}, video_id=f"a-video-with-a-longer-id-{video:04d}")
    auth = {"Authorization": f"apikey {platform.tokens[34]}"}
    popular, hosts = STATISTICS + "popular", STATISTICS + "hosts"
    with httpx.Client(base_url=platform.base, timeout=30) as http:
        plain = http.get(popular, params=WINDOW, headers={**auth, "Accept-Encoding": "identity"})
        zipped = http.get(popular, params=WINDOW, headers={**auth, "Accept-Encoding": "gzip"})
        small = http.get(hosts, params=WINDOW, headers={**auth, "Accept-Encoding": "gzip"})
        openapi = http.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        metrics = http.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert len(plain.content) > 1024 and "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json()  # as httpx decodes it
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert len(small.content) < 1024 and "content-encoding" not in small.headers
    assert openapi.headers["content-encoding"] == "gzip"
    # Prometheus' text stays as prometheus_client writes it.
    assert "content-encoding" not in metrics.headers
    assert "viewstats_query_seconds" in metrics.text


@pytest.mark.parametrize(("given", "kept"), [
    ("7b0c-gw.42:a=b+c/d", True), ("", False), ("<script>", False), ("a b", False),
    ("x" * 129, False)])
def test_every_answer_carries_a_request_id(platform: Platform, given: str, kept: bool) -> None:
    headers = {"X-Request-ID": given} if given else {}
    for method, path in (("GET", STATISTICS + "hosts"), ("GET", "/nowhere"),
                         ("POST", "/events"), ("GET", "/healthz")):
        answer = platform.http.request(method, path, headers=headers)
        request_id = answer.headers["x-request-id"]
        if kept:
            assert request_id == given
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", request_id)
