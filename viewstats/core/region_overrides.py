"""DB-IP City Lite region names that `viewstats.core.regions`' rules cannot map to ISO 3166-2.

pycountry names subdivisions in their own languages ("Nordrhein-Westfalen", "Mazowieckie",
"Al Jīzah"); DB-IP uses English exonyms ("North Rhine-Westphalia", "Mazovia", "Giza"), and for
France the regions before 2016 ("Rhone-Alpes"). Listed: every such name of the countries where
the rules reached less than ~60% of DB-IP's networks (measured over the 2026-06 release), down
to a few hundred networks, and the capitals and largest regions elsewhere. Codes are given
without the country prefix. A name not listed and not matched by the rules maps to "".
"""

from __future__ import annotations

from typing import Final

OVERRIDES: Final[dict[str, dict[str, str]]] = {
    "AE": {"Abu Dhabi": "AZ"},
    "AR": {"Buenos Aires F.D.": "C"},
    "AT": {"State of Vienna": "9", "Vienna": "9", "Lower Austria": "3", "Upper Austria": "4",
           "Styria": "6", "Tyrol": "7", "Carinthia": "2"},
    "BE": {"Brussels Capital": "BRU", "Flanders": "VLG"},
    "BG": {"Sofia-grad": "22"},
    "BR": {"Federal District": "DF"},
    "CH": {"Bern": "BE", "Geneva": "GE", "Saint Gall": "SG", "Lucerne": "LU", "Basel-City": "BS",
           "Grisons": "GR"},
    "CL": {"Santiago Metropolitan": "RM"},
    "CN": {"Inner Mongolia": "NM"},
    "CO": {"Bogota D.C.": "DC"},
    "CZ": {"Prague": "10", "South Moravian": "64", "Central Bohemia": "20",
           "Moravian-Silesian Region": "80", "South Bohemian Region": "31", "Plzen Region": "32",
           "Carlsbad Region": "41"},
    "DE": {"North Rhine-Westphalia": "NW", "Hesse": "HE", "Lower Saxony": "NI", "Saxony": "SN",
           "Thuringia": "TH", "Saxony-Anhalt": "ST", "Free and Hanseatic City of Hamburg": "HH",
           "Free Hanseatic City of Bremen": "HB"},
    "DK": {"Capital Region": "84", "Central Jutland": "82", "South Denmark": "83",
           "North Denmark": "81", "Zealand": "85"},
    "DZ": {"Algiers": "16"},
    "EG": {"Giza": "GZ", "Cairo": "C", "Qalyubia": "KB", "Alexandria": "ALX", "Sharqia": "SHR",
           "Beheira": "BH", "Dakahlia": "DK", "Gharbia": "GH", "Monufia": "MNF", "Minya": "MN",
           "Kafr el-Sheikh": "KFS", "Sohag": "SHG", "Damietta": "DT", "Faiyum": "FYM",
           "Red Sea": "BA", "Beni Suweif": "BNS", "Qena": "KN", "Ismailia": "IS", "Suez": "SUZ",
           "Port Said": "PTS", "South Sinai": "JS", "Luxor": "LX", "North Sinai": "SIN",
           "Matruh": "MT", "New Valley": "WAD"},
    "ES": {"Valencia": "VC", "Catalonia": "CT", "Andalusia": "AN", "Castille and Leon": "CL",
           "Canary Islands": "CN", "Castille-La Mancha": "CM", "Basque Country": "PV",
           "Balearic Islands": "IB", "Navarre": "NC"},
    "FR": {"Rhone-Alpes": "ARA", "New Aquitaine": "NAQ", "Brittany": "BRE",
           "Normandy": "NOR", "Bourgogne": "BFC", "Provence": "PAC", "Corsica": "20R"},
    "GR": {"Attica": "I", "Central Macedonia": "B", "West Greece": "G", "Crete": "M",
           "Thessaly": "E", "Peloponnese": "J", "East Macedonia and Thrace": "A",
           "South Aegean": "L", "Central Greece": "H", "North Aegean": "K", "Epirus": "D",
           "Ionian Islands": "F", "West Macedonia": "C", "Mount Athos": "69"},
    "HR": {"Zagreb": "21"},
    "ID": {"Jakarta": "JK", "West Java": "JB", "East Java": "JI", "Central Java": "JT"},
    "IE": {"Connacht": "C"},
    "IL": {"Central District": "M", "Tel Aviv": "TA", "Haifa": "HA", "Jerusalem": "JM",
           "Southern District": "D", "Northern District": "Z"},
    "IT": {"Lombardy": "25", "Piedmont": "21", "Tuscany": "52", "Sicily": "82", "Apulia": "75",
           "The Marches": "57", "Sardinia": "88", "Basilicate": "77", "Aosta Valley": "23"},
    "JO": {"Amman": "AM"},
    "KR": {"North Chungcheong": "43", "Gangwon-do": "42", "Jeju-do": "49"},
    "MX": {"Mexico City": "CMX"},  # the rules would say MX-MEX, the state around it
    "MY": {"Kuala Lumpur": "14"},
    "NL": {"North Holland": "NH", "South Holland": "ZH", "North Brabant": "NB",
           "Friesland": "FR"},
    "PL": {"Mazovia": "14", "Silesia": "24", "Greater Poland": "30", "Pomerania": "22",
           "Lesser Poland": "12", "Lower Silesia": "02", "Lodz Voivodeship": "10",
           "West Pomerania": "32", "Lublin": "06", "Subcarpathia": "18", "Subcarpathian": "18",
           "Warmia-Masuria": "28", "Lubusz": "08", "Podlasie": "20", "Opole Voivodeship": "16"},
    "PT": {"Lisbon": "11", "Azores": "20", "Madeira": "30"},
    "RO": {"Bucharest": "B"},
    "RU": {"Moscow": "MOW", "St.-Petersburg": "SPE", "Moscow Oblast": "MOS",
           "Sverdlovsk Oblast": "SVE", "Sverdlovsk": "SVE", "Novosibirsk Oblast": "NVS",
           "Krasnodar Krai": "KDA", "Nizhny Novgorod Oblast": "NIZ", "Samara Oblast": "SAM",
           "Rostov": "ROS", "Primorye": "PRI", "Chelyabinsk": "CHE", "Altay Kray": "ALT"},
    "SA": {"Riyadh Region": "01", "Mecca Region": "02", "Eastern Province": "04"},
    "TH": {"Bangkok": "10"},
    "VN": {"Hanoi": "HN", "Ho Chi Minh City (HCMC)": "SG", "Da Nang City": "DN"},
}
