"""`viewstats.core.regions`: DB-IP City Lite's English region names to ISO 3166-2 codes."""

from __future__ import annotations

import pytest

from viewstats.core.region_overrides import OVERRIDES
from viewstats.core.regions import region_code, region_name


@pytest.mark.parametrize(("country", "name", "code"), [
    ("US", "California", "US-CA"),
    ("GB", "England", "GB-ENG"),
    ("GB", "Scotland", "GB-SCT"),
    ("DE", "Bavaria", "DE-BY"),  # pycountry's English translation of "Bayern"
    ("DE", "Bayern", "DE-BY"),
    ("IN", "Maharashtra", "IN-MH"),  # "Mahārāshtra": accents aside
    ("FR", "Île-de-France", "FR-IDF"),
    ("FR", "Ile-de-France", "FR-IDF"),
    ("FR", "Provence-Alpes-Cote d'Azur", "FR-PAC"),  # pycountry: a typographic apostrophe
    ("JP", "Tokyo", "JP-13"),
    ("BR", "São Paulo", "BR-SP"),
    ("BR", "Sao Paulo", "BR-SP"),
    ("ES", "Madrid", "ES-MD"),  # the community, not the province ES-M of the same name
    ("DE", "State of Berlin", "DE-BE"),  # kind words dropped
    ("TR", "Izmir Province", "TR-35"),
    ("KR", "Seoul", "KR-11"),  # "Seoul-teukbyeolsi"
    ("SE", "Skane", "SE-M"),  # "Skåne län": a genitive "s" and "län" dropped
    ("NO", "Trondelag", "NO-50"),  # "Trøndelag": ø is no o with an accent to NFKD
    ("MX", "Veracruz", "MX-VER"),  # the start of "Veracruz de Ignacio de la Llave"
    ("NL", "North Holland", "NL-NH"),  # overrides
    ("MX", "Mexico City", "MX-CMX"),
    ("ES", "Valencia", "ES-VC"),
])
def test_known_names_map_to_their_code(country: str, name: str, code: str) -> None:
    assert region_code(country, name) == code


@pytest.mark.parametrize(("country", "name"), [
    ("US", "Atlantis"), ("US", ""), ("ZZ", "California"), ("", ""),
    ("DE", "California"),  # names count within their country only
    ("MZ", "Maputo"),  # both a city and a province of that name: ambiguous
    ("DE", "North"),  # the start of no name, or of more than one
])
def test_unknown_names_map_to_nothing(country: str, name: str) -> None:
    assert region_code(country, name) == ""


def test_every_override_names_a_real_code() -> None:
    for country, table in OVERRIDES.items():
        for name, code in table.items():
            assert region_name(f"{country}-{code}"), (country, name)  # a code pycountry has
            assert region_code(country, name) == f"{country}-{code}"


def test_region_name_is_english_where_pycountry_translates() -> None:
    assert region_name("US-CA") == "California"
    assert region_name("DE-BY") == "Bavaria"
    assert region_name("FR-IDF") == "Île-de-France"
    assert region_name("CH-FR") == "Fribourg"  # not "Fribourg / Freiburg / Friburgo / ..."
    assert region_name("GB-ENG") == "England"
    assert region_name("") == ""
    assert region_name("US-XX") == ""
    assert region_name("US") == ""
