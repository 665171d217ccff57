"""The rule that a test reaches a real service only when its marker says so (architecture §9):
`-m 'not kafka'` must really leave Kafka out, so a test using the service's fixtures without
the marker fails before the service would start."""

from __future__ import annotations

import pytest


def missing_marker_message(nodeid: str, marker: str, uses: str) -> str:
    return (f"{nodeid} {uses} but is not marked @pytest.mark.{marker}: "
            f"mark it so that `-m 'not {marker}'` really leaves it out")


def require_marker(item: pytest.Item, marker: str, fixtures: frozenset[str], uses: str) -> None:
    uses_service = fixtures & set(getattr(item, "fixturenames", ()))
    if uses_service and item.get_closest_marker(marker) is None:
        pytest.fail(missing_marker_message(item.nodeid, marker, uses), pytrace=False)
