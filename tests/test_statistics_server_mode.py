"""The statistics family in server mode (architecture §9, §15): the property and edge tests
written for the embedded backend run unchanged through clickhouse-connect over HTTP, where
bound values travel as HTTP parameters instead of in-process, and the rollups' migrations run
on a server; this module's `storage` fixture overrides the session's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tests.test_audience as audience_tests
import tests.test_bounded_answers as bounded_tests
import tests.test_budget as budget_tests
import tests.test_country_filters as country_filter_tests
import tests.test_hosts as hosts_tests
import tests.test_popular as popular_tests
import tests.test_views as views_tests
from tests.support.server_mode import clickhouse_url
from viewstats.core.storage import Storage
from viewstats.core.storage.clickhouse_server import ServerStorage
from viewstats.schema.migrations import migrate

pytestmark = [pytest.mark.chdb, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerStorage]:
    tmp = tmp_path_factory.mktemp("server")
    with clickhouse_url(tmp / "clickhouse", tmp / "endpoint.log") as url:
        storage = ServerStorage(url)
        migrate(storage)
        yield storage
        storage.close()


@pytest.fixture
def storage(server_storage: ServerStorage) -> Storage:
    return server_storage


test_views_match_brute_force = views_tests.test_views_match_brute_force
test_filter_values_match_exactly_whatever_their_characters = (
    views_tests.test_filter_values_match_exactly_whatever_their_characters)
test_rows_per_day_with_a_partial_first_and_last_day = (
    views_tests.test_rows_per_day_with_a_partial_first_and_last_day)
test_hosts_match_brute_force = hosts_tests.test_hosts_match_brute_force
test_popular_matches_brute_force = popular_tests.test_popular_matches_brute_force
# The audience's rollups, and the viewers' uniqExact sets merged across parts by the server.
test_ranked_audience_matches_brute_force = audience_tests.test_ranked_endpoints_match_brute_force
test_unique_viewers_match_brute_force = audience_tests.test_unique_viewers_match_brute_force
test_filtered_countries_match_brute_force = (
    country_filter_tests.test_filtered_countries_match_brute_force)
# The engine limits travel as settings of the HTTP request, and the server's error names them.
test_a_query_past_an_engine_limit_gets_503_naming_it = (
    budget_tests.test_a_query_past_an_engine_limit_gets_503_naming_it)
# So does the row cap's: the server stops aggregating at the cap too.
test_the_engine_stops_aggregating_at_the_cap = (
    bounded_tests.test_the_engine_stops_aggregating_at_the_cap)
