"""viewer_ip: the socket peer, or the right-most untrusted X-Forwarded-For hop behind proxies."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewstats.core.settings import IPNetwork
from viewstats.ingest.collector.client_ip import IPAddress, parse_ip, viewer_ip

LOOPBACK: tuple[IPNetwork, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
PROXIES: tuple[IPNetwork, ...] = (*LOOPBACK, ip_network("10.0.0.0/8"),
                                  ip_network("fd00::/8"))


def ip(text: str) -> IPAddress:
    return ip_address(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:80", "2001:db8::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::ffff:1.2.3.4]:443", "1.2.3.4"),
        ("2001:DB8::A", "2001:db8::a"),
    ],
)
def test_parse_ip_accepts_addresses_with_ports_and_brackets(text: str, expected: str) -> None:
    assert parse_ip(text) == ip(expected)


@pytest.mark.parametrize(
    "text",
    ["", " ", "unknown", "testclient", "1.2.3", "1.2.3.256", "[2001:db8::1", "[2001:db8::1]x",
     "2001:db8::1:80:80:80:80:80", "1.2.3.4:80:90", "example.com", "_hidden", ":80",
     "010.1.1.1", "0x7f.0.0.1", "2130706433", "fe80::1%eth0", "1.2.3.4\x00", "1.2.3.é"],
)
def test_parse_ip_rejects_garbage(text: str) -> None:
    assert parse_ip(text) is None


@given(st.ip_addresses())
def test_parse_ip_reads_every_address_in_its_usual_forms(
        address: IPv4Address | IPv6Address) -> None:
    unmapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    expected = unmapped or address
    assert parse_ip(str(address)) == expected
    if isinstance(address, IPv6Address):
        assert parse_ip(f"[{address}]:8080") == expected
        assert parse_ip(address.exploded.upper()) == expected
    else:
        assert parse_ip(f"{address}:8080") == expected


def test_untrusted_peer_is_the_viewer_whatever_the_header_says() -> None:
    assert viewer_ip("8.8.8.8", ["1.1.1.1"], LOOPBACK) == ip("8.8.8.8")


def test_trusted_peer_without_header_is_the_viewer() -> None:
    assert viewer_ip("127.0.0.1", [], LOOPBACK) == ip("127.0.0.1")


def test_trusted_peer_hands_over_to_the_right_most_hop() -> None:
    assert viewer_ip("127.0.0.1", ["8.8.8.8"], LOOPBACK) == ip("8.8.8.8")


def test_spoofed_left_most_entries_are_ignored() -> None:
    # The client wrote "1.1.1.1, 9.9.9.9"; our proxy appended the address it saw, 8.8.8.8.
    assert viewer_ip("127.0.0.1", ["1.1.1.1, 9.9.9.9, 8.8.8.8"], LOOPBACK) == ip("8.8.8.8")


def test_a_chain_of_trusted_proxies_is_walked() -> None:
    forwarded = ["1.1.1.1, 8.8.8.8, 10.0.0.5, 10.0.0.6"]
    assert viewer_ip("127.0.0.1", forwarded, PROXIES) == ip("8.8.8.8")


def test_several_headers_are_joined_in_order() -> None:
    forwarded = ["1.1.1.1", "8.8.8.8, 10.0.0.5", "10.0.0.6"]
    assert viewer_ip("127.0.0.1", forwarded, PROXIES) == ip("8.8.8.8")


def test_when_every_hop_is_trusted_the_left_most_wins() -> None:
    assert viewer_ip("127.0.0.1", ["10.0.0.1, 10.0.0.2"], PROXIES) == ip("10.0.0.1")


def test_garbage_stops_the_walk_at_the_last_good_address() -> None:
    assert viewer_ip("127.0.0.1", ["8.8.8.8, unknown"], LOOPBACK) == ip("127.0.0.1")
    # Garbage left of trusted hops: the last trusted hop stands; nothing left of it is read.
    forwarded = ["8.8.8.8, not-an-ip, 10.0.0.5"]
    assert viewer_ip("127.0.0.1", forwarded, PROXIES) == ip("10.0.0.5")
    assert viewer_ip("127.0.0.1", ["8.8.8.8,,10.0.0.5"], PROXIES) == ip("10.0.0.5")
    assert viewer_ip("127.0.0.1", [""], LOOPBACK) == ip("127.0.0.1")


def test_ipv6_peers_and_hops() -> None:
    assert viewer_ip("::1", ["2001:db8::7"], LOOPBACK) == ip("2001:db8::7")
    assert viewer_ip("2001:db8::9", ["1.1.1.1"], LOOPBACK) == ip("2001:db8::9")
    forwarded = ["2001:db8::7, fd00::1"]
    assert viewer_ip("::1", forwarded, PROXIES) == ip("2001:db8::7")


def test_ports_and_brackets_in_hops() -> None:
    assert viewer_ip("127.0.0.1", ["8.8.8.8:5678"], LOOPBACK) == ip("8.8.8.8")
    assert viewer_ip("127.0.0.1", ["[2001:db8::1]:80"], LOOPBACK) == ip("2001:db8::1")
    assert viewer_ip("127.0.0.1", ["8.8.8.8, 10.0.0.5:443"], PROXIES) == ip("8.8.8.8")


def test_ipv4_mapped_addresses_are_unmapped_before_trust_is_decided() -> None:
    # A dual-stack socket reports an IPv4 proxy as ::ffff:127.0.0.1: it is still loopback.
    assert viewer_ip("::ffff:127.0.0.1", ["8.8.8.8"], LOOPBACK) == ip("8.8.8.8")
    assert viewer_ip("::ffff:8.8.8.8", [], LOOPBACK) == IPv4Address("8.8.8.8")
    assert viewer_ip("127.0.0.1", ["::ffff:8.8.8.8"], LOOPBACK) == IPv4Address("8.8.8.8")
    assert viewer_ip("127.0.0.1", ["8.8.8.8, ::ffff:10.0.0.5"], PROXIES) == ip("8.8.8.8")


def test_a_peer_that_is_not_an_address_gives_none() -> None:
    assert viewer_ip(None, ["8.8.8.8"], LOOPBACK) is None
    assert viewer_ip("testclient", ["8.8.8.8"], LOOPBACK) is None


def test_nothing_is_trusted_when_no_proxy_is_configured() -> None:
    assert viewer_ip("127.0.0.1", ["8.8.8.8"], ()) == ip("127.0.0.1")


# Property: however the client fills X-Forwarded-For, and however the trusted proxies format
# their hops, the answer is the address the first trusted proxy saw connect.


def untrusted(address: IPv4Address | IPv6Address) -> bool:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return False  # that is an IPv4 address, generated as such
    return not any(address in network for network in PROXIES)


untrusted_viewers = st.ip_addresses().filter(untrusted)
trusted_hops = st.one_of(st.ip_addresses(network="10.0.0.0/8"),
                         st.ip_addresses(network="fd00::/8"),
                         st.ip_addresses(network="127.0.0.0/8"))
client_written = st.lists(
    st.one_of(st.ip_addresses().map(str), st.text(alphabet=st.characters(codec="latin-1"))),
    max_size=5)


def written_by_a_proxy(address: IPv4Address | IPv6Address, style: int) -> str:
    if isinstance(address, IPv6Address):
        return (str(address), f"[{address}]", f"[{address}]:443")[style]
    return (str(address), f"{address}:5678", f"::ffff:{address}")[style]


@given(
    client_entries=client_written,
    viewer=untrusted_viewers,
    proxies=st.lists(trusted_hops, min_size=1, max_size=4),
    styles=st.lists(st.integers(0, 2), min_size=5, max_size=5),
    split=st.integers(0, 20),
)
def test_the_viewer_is_the_first_untrusted_hop_whatever_the_client_wrote(
    client_entries: list[str], viewer: IPv4Address | IPv6Address,
    proxies: list[IPv4Address | IPv6Address], styles: list[int], split: int,
) -> None:
    # The first proxy appends the viewer; each further proxy appends the one before it; the
    # last proxy is the socket peer.
    *inner, peer = proxies
    hops = [written_by_a_proxy(a, s) for a, s in zip([viewer, *inner], styles, strict=False)]
    entries = [*client_entries, *hops]
    # Some proxies add a header of their own instead of extending the last one.
    cut = split % len(entries)
    forwarded = [", ".join(entries[:cut]), ", ".join(entries[cut:])]
    assert viewer_ip(str(peer), forwarded, PROXIES) == viewer
