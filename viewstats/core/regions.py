"""ISO 3166-2 region codes for the English subdivision names that DB-IP City Lite gives.

DB-IP's ``state1`` is an English name ("Bavaria", "Sao Paulo", "Ile-de-France"); Gcore's regions
statistics want the ISO 3166-2 code ("DE-BY", "BR-SP", "FR-IDF"). The table is built from
pycountry's subdivisions, each known by its ISO name, its English translation (pycountry's
``en`` catalogue: "Bayern" -> "Bavaria") and the parts of a compound name ("Madrid, Comunidad
de", "Fribourg / Freiburg"). A name is looked up, within its country, as it is spelled (accents,
case and punctuation aside), then without the words that say what kind of place it is
("Province of", "County", "Oblast"), then as the start of exactly one name ("Veracruz" for
"Veracruz de Ignacio de la Llave"). `region_overrides.OVERRIDES` names the English exonyms that
no rule reaches. Anything else maps to "".

The collector (per GeoIP record) and the query API (names for codes) both read it; it is built
once, on first use (~0.5 s and ~17 MB, with pycountry's own tables).
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import Final, NamedTuple

import pycountry

from viewstats.core.region_overrides import OVERRIDES

__all__ = ["region_code", "region_name"]

# Words that say what kind of subdivision a name is, not which: "Province of Bari", "Kyiv
# Oblast", "Seoul-teukbyeolsi" and "Stockholms län" name their place by the other words.
_KIND_WORDS: Final = frozenset((
    "the", "of", "de", "del", "la", "province", "provincia", "state", "estado", "region",
    "regiao", "oblast", "county", "governorate", "prefecture", "department", "departamento",
    "district", "municipality", "autonomous", "community", "comunidad", "respublika",
    "republic", "kray", "krai", "kraj", "territory", "voivodeship", "canton", "emirate",
    "parish", "division", "sheng", "shi", "zizhiqu", "do", "si", "teukbyeolsi", "gwangyeoksi",
    "teukbyeoljachido", "city", "capital", "lan",
))
_APOSTROPHES: Final = re.compile("['\u2018\u2019\u02bc\u02bb]")
# Letters that NFKD does not take apart into a base letter and an accent.
_LETTERS: Final = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l",
                                 "\u0131": "i", "þ": "th", "ħ": "h"})


class _Table(NamedTuple):
    codes: dict[tuple[str, str], str]  # (country, exact or loose key) -> code
    by_first_word: dict[tuple[str, str], dict[str, str]]  # (country, word) -> loose key -> code
    names: dict[str, str]  # code -> English name


def _words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    # Apostrophes join ("Cote d'Azur", "Côte-d\u2019Azur" and "oblast'" spell their words alike).
    return re.findall(r"[^\W_]+", _APOSTROPHES.sub("", bare.translate(_LETTERS)))


def _exact(text: str) -> str:
    return " ".join(_words(text))


def _loose(text: str) -> str:
    # A final "s" goes too: Swedish counties are genitives ("Skånes län" for DB-IP's "Skane").
    return " ".join(w.removesuffix("s") for w in _words(text) if w not in _KIND_WORDS)


def _spellings(name: str) -> Iterator[str]:
    """`name` and the parts of it that name the place alone."""
    bare = re.sub(r"\s*[\[(].*?[\])]", "", name).strip()  # "Tokyo [Tôkyô]", "Ilocos (Region I)"
    yield name
    yield bare
    for part in bare.split("/"):
        yield part
        head, comma, tail = part.partition(",")
        if comma:  # "Madrid, Comunidad de" -> "Comunidad de Madrid", "Madrid"
            yield f"{tail} {head}"
            yield head


def _unambiguous(candidates: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], str]:
    # Two places of one rank under one name ("Maputo": the city and the province) are neither.
    return {key: next(iter(codes)) for key, codes in candidates.items() if len(codes) == 1}


@cache
def _table() -> _Table:
    english = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["en"])
    # Per key, only candidates of the highest rank seen count: top-level subdivisions come
    # first, so a name shared with a province ("Madrid": community ES-MD, province ES-M) means
    # the larger place.
    subdivisions = sorted(pycountry.subdivisions, key=lambda s: s.parent_code is not None)
    exact: dict[tuple[str, str], set[str]] = {}
    loose: dict[tuple[str, str], set[str]] = {}
    rank: dict[tuple[int, str, str], bool] = {}
    names: dict[str, str] = {}
    for sub in subdivisions:
        top = sub.parent_code is None
        translated = english.gettext(sub.name)
        # The translation only where it is one name ("Fribourg / Freiburg / ..." is not).
        names[sub.code] = sub.name if "/" in translated else translated
        for spelling in {*_spellings(sub.name), *_spellings(translated)}:
            for tier, keys, key in ((0, exact, _exact(spelling)), (1, loose, _loose(spelling))):
                if key and rank.setdefault((tier, sub.country_code, key), top) == top:
                    keys.setdefault((sub.country_code, key), set()).add(sub.code)
    by_first_word: dict[tuple[str, str], dict[str, str]] = {}
    for (country, key), code in _unambiguous(loose).items():
        by_first_word.setdefault((country, key.split()[0]), {})[key] = code
    codes = {**_unambiguous(loose), **_unambiguous(exact)}
    codes.update(((country, _exact(name)), f"{country}-{code}")
                 for country, table in OVERRIDES.items() for name, code in table.items())
    return _Table(codes, by_first_word, names)


def preload() -> None:
    """Build the table now (~0.5 s, pycountry's data): a process calls it at start, so that
    the first beacon or `regions` answer does not wait for it on the event loop."""
    _table()


def region_code(country: str, name: str) -> str:
    """ISO 3166-2 code of subdivision `name` of `country` (alpha-2), or "" when unknown."""
    table = _table()
    exact, loose = _exact(name), _loose(name)
    code = table.codes.get((country, exact)) or table.codes.get((country, loose))
    if code or not loose:
        return code or ""
    longer = {code for key, code in table.by_first_word.get((country, loose.split()[0]), {})
              .items() if key.startswith(loose + " ")}
    return longer.pop() if len(longer) == 1 else ""


def region_name(code: str) -> str:
    """English name of ISO 3166-2 `code` ("" for "" and unknown codes).

    pycountry's English translation where it has one ("DE-BY": "Bavaria"), else the ISO name.
    """
    return _table().names.get(code, "")
