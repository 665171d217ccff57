"""Single-event beacons as browsers send them (sendBeacon's headers, through a proxy on
loopback), each of a new view so that no writer's dedup window drops one."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import overload

import orjson

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
# A new view id per beacon for as long as any run lasts; the client makes each when it sends it.
ENDLESS = 2**40
VIEW_ID_SLOT = b"00000000-0000-4000-8000-000000000000"  # as long as every uuid4's text


class Beacons(Sequence[bytes]):
    """Endless beacons, as browsers send them, each of a new view: beacon i is template
    i % templates (event, client, video, viewer address) with view id i of this client process.
    Made as they are sent, since a run's count is not known in advance; a few string joins
    each, on the client's CPU."""

    def __init__(self, port: int, templates: int, seed: int) -> None:
        self._templates = _templates(port, templates, seed)
        self._seed = seed

    def __len__(self) -> int:
        return ENDLESS

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            raise TypeError("beacons are made one at a time")
        head, tail = self._templates[index % len(self._templates)]
        # The seed in the high bits keeps client processes apart; uuid4's fixed bits are above
        # bit 61, so ids stay distinct.
        view_id = uuid.UUID(int=self._seed << 64 | index, version=4)
        return head + str(view_id).encode() + tail


def _templates(port: int, count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Beacons (clients, videos, viewer addresses) split where the view id goes."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        body = orjson.dumps({
            "event": rng.choice(("init", "start", "watch")), "client_id": rng.randrange(1, 500),
            "video_id": f"v-{rng.randrange(100_000)}", "type": "vod",
            "view_id": VIEW_ID_SLOT.decode()})
        viewer = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}"
        head = (
            f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nOrigin: https://player.example.com\r\n"
            "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\n"
            "Referer: https://player.example.com/watch/v-1\r\n"
            "Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
            f"X-Forwarded-For: {viewer}\r\n\r\n")
        head_bytes, _, tail = (head.encode() + body).partition(VIEW_ID_SLOT)
        out.append((head_bytes, tail))
    return out
