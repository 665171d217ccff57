"""The viewer's IP address: the socket peer, or what trusted proxies say in X-Forwarded-For.

Each proxy appends the address it received the request from, so the list reads
``client-written..., viewer, proxy1, proxy2`` and only the entries added by proxies we trust are
believable. Walking from the right, the first address that is not a trusted proxy is the one a
trusted proxy saw connect: the viewer. Everything left of it was written by the client and may be
forged, so it is only consulted while every hop so far is trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from socket import AF_INET, AF_INET6, inet_pton

from viewstats.core.settings import IPNetwork

IPAddress = IPv4Address | IPv6Address

_IPV4_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96


def parse_ip(text: str) -> IPAddress | None:
    """An address as found in X-Forwarded-For or a socket peer, or None when it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:80``; IPv4-mapped IPv6 addresses come back as the IPv4 address they carry,
    so that trust and GeoIP see one form of each address. Only the strict textual forms are
    addresses (no ``010.1.1.1``, ``0x7f.1``, or ``%zone`` suffix).
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not (end == len(text) - 1 or text[end + 1] == ":"):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        # One colon cannot be IPv6 (which needs at least two): it is IPv4 with a port.
        text = text.partition(":")[0]
    # inet_pton is strict and several times faster than ipaddress's own parser, which matters
    # because every beacon behind a proxy parses two addresses.
    family = AF_INET6 if ":" in text else AF_INET
    try:
        packed = inet_pton(family, text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None
    if family == AF_INET:
        return IPv4Address(packed)
    if packed.startswith(_IPV4_MAPPED):
        return IPv4Address(packed[12:])
    return IPv6Address(packed)


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    # A network of the other family simply does not contain the address.
    return any(address in network for network in trusted)


def viewer_ip(peer: str | None, forwarded_for: list[str],
              trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The viewer's address per architecture §3, or None when there is no usable one.

    `peer` is the socket peer's host (None or a non-address such as a Unix socket: None);
    `forwarded_for` holds every X-Forwarded-For header value, in the order received.
    """
    address = parse_ip(peer) if peer is not None else None
    if address is None or not _trusted(address, trusted):
        return address
    entries = ",".join(forwarded_for).split(",") if forwarded_for else []
    for entry in reversed(entries):
        hop = parse_ip(entry)
        if hop is None:
            # Garbage means a hop we cannot vouch for: nothing left of it is believable, so the
            # last address a trusted party gave us stands.
            return address
        address = hop
        if not _trusted(hop, trusted):
            return hop
    return address
