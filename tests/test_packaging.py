"""The package setuptools builds holds every subpackage of the namespace, and its data files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "setuptools"]


def test_every_subpackage_is_listed_for_the_build() -> None:
    found = {".".join(Path(root).relative_to(REPO).parts)
             for root, _, files in os.walk(REPO / "viewstats", followlinks=True)
             if "__init__.py" in files}
    assert found == set(SETUPTOOLS["packages"])


def test_the_mapped_folders_are_the_symlinked_ones() -> None:
    """viewstats/<name> in a checkout and the installed viewstats.<name> are the same folder."""
    for package, folder in SETUPTOOLS["package-dir"].items():
        in_checkout = REPO / package.replace(".", "/")
        assert in_checkout.resolve() == (REPO / folder).resolve(), package
