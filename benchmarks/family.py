"""The statistics family's requests as the query benchmarks ask them (benchmarks.
statistics_latency, benchmarks.fairness), and each one's answer counted from `player_events`
alone, written apart from the API's statement builder so that it checks it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks.asks import Ask, timed
from benchmarks.mix import Endpoint
from viewstats.core.storage import Storage

Answer = list[tuple[str | int, ...]]  # rows of (fields…, views), in the documented order


@dataclass(frozen=True)
class Query:
    name: str
    path: str  # under /streaming/statistics/
    params: str  # beside the window; {id}, {country}, {host}: the client's top values
    fields: tuple[str, ...]  # an answer row's fields besides views
    reads: str = "rollups"  # or "player_events" (README, "Statistics endpoints")
    event: str | None = "watch"  # the event counted; None: every event
    hourly: bool = False
    by_views: bool = False  # rows ordered by views descending, then key; else by the fields
    limit: int | None = None
    distinct: bool = False  # counts distinct viewers (uniqs), in a row's `unique_ips`

    @property
    def measure(self) -> str:
        return "unique_ips" if self.distinct else "views"

    def target(self, ask: Ask, values: dict[str, str]) -> str:
        extra = self.params.format(**{k: quote(v, safe="") for k, v in values.items()})
        return (f"/streaming/statistics/{self.path}?{ask.window_query}"
                + (f"&{extra}" if extra else ""))

    @property
    def template(self) -> str:
        return (f"/streaming/statistics/{self.path}?date_from=…&date_to=…"
                + (f"&{self.params}" if self.params else ""))

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(name for name in ("id", "country", "host") if f"{{{name}}}" in self.params)


QUERIES = (
    Query("views", "views", "", ("date", "type")),
    Query("views-1h", "views", "granularity=1h", ("date", "type"), hourly=True),
    Query("by-country", "views", "group=country", ("date", "type", "country")),
    Query("by-event", "views", "group=event", ("date", "type", "event"), event=None),
    Query("of-video", "views", "id={id}", ("date", "type")),
    Query("of-host", "views", "host={host}", ("date", "type")),
    Query("hosts", "hosts", "", ("host",), by_views=True),
    Query("popular", "popular", "limit=100", ("id",), by_views=True, limit=100),
    Query("video+country", "views", "id={id}&country={country}", ("date", "type"),
          reads="player_events"),
    Query("by-host+country", "views", "group=host,country", ("date", "type", "host", "country"),
          reads="player_events"),
    Query("video-starts", "views", "id={id}&event=start", ("date", "type"),
          reads="player_events", event="start"),
    Query("countries-of-video", "countries", "id={id}", ("country",), reads="player_events",
          by_views=True),
    Query("countries-of-host", "countries", "host={host}", ("country",), reads="player_events",
          by_views=True),
    # The audience (architecture §18): unique viewers of every event, over the window and per
    # day, and the four ranked breakdowns.
    Query("uniqs", "uniqs", "", (), event=None, distinct=True),
    Query("uniqs-by-date", "uniqs", "group=date", ("date",), event=None, distinct=True),
    Query("browsers", "browsers", "", ("browser",), by_views=True),
    Query("systems", "systems", "", ("os",), by_views=True),
    Query("regions", "regions", "", ("region",), by_views=True),
    Query("embeds", "embeds", "", ("embed_url",), by_views=True),
)
WARMUP = QUERIES[0]  # asked for other clients first on each cold process; needs no top values
_NAMED = {q.name: q for q in QUERIES}
# The mix's requests (issue 20's realistic mix): every endpoint, unfiltered, and the two
# filters a dashboard adds first.
MIX_QUERIES = (Query("countries", "countries", "", ("country",), by_views=True),
               _NAMED["views"],
               Query("of-country", "views", "country={country}", ("date", "type")),
               _NAMED["hosts"], _NAMED["popular"], _NAMED["countries-of-host"])
_EXPRESSIONS = {"type": "toString(type)", "host": "toString(host)",
                "country": "toString(country)", "event": "toString(event)", "id": "video_id",
                "browser": "toString(browser)", "os": "toString(os)",
                "region": "toString(region)", "embed_url": "embed_url"}
_DATES = {False: "toString(toDate(ts, 'UTC'))",
          True: "formatDateTime(toStartOfHour(ts), '%Y-%m-%dT%H:00:00Z')"}
TOP_VALUES_SQL = {  # a client's most viewed video, country and host
    "id": "SELECT video_id FROM views_by_video_daily WHERE client_id = {client:UInt32} "
          "GROUP BY video_id ORDER BY sum(views) DESC, video_id LIMIT 1",
    "country": "SELECT toString(country) FROM views_by_country_daily "
               "WHERE client_id = {client:UInt32} GROUP BY country "
               "ORDER BY sum(views) DESC, country LIMIT 1",
    "host": "SELECT toString(host) FROM views_by_host_daily WHERE client_id = {client:UInt32} "
            "GROUP BY host ORDER BY sum(views) DESC, host LIMIT 1",
}


def raw_sql(query: Query) -> str:
    """The query's answer counted from `player_events` alone, written apart from the API's
    statement builder (query_api.breakdown) so that it checks it."""
    columns = [f"{_DATES[query.hourly] if f == 'date' else _EXPRESSIONS[f]} AS f_{f}"
               for f in query.fields]
    where = ["client_id = {client:UInt32}", "ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')",
             "ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"]
    if query.event is not None:
        where.append(f"event = '{query.event}'")
    if query.distinct:
        where.append("viewer != 0")  # no key: stored before viewers were keyed
    where += [f"{'video_id' if f == 'id' else f} = {{{f}:String}}" for f in query.filters]
    keys = [f"f_{f}" for f in query.fields]
    order = ["views DESC", *keys] if query.by_views else keys
    count = "uniqExact(viewer)" if query.distinct else "count()"
    # Without fields, one row: the window's total (0 when it holds nothing).
    return (f"SELECT {', '.join([*columns, count + ' AS views'])} FROM player_events "
            f"WHERE {' AND '.join(where)}"
            + (f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(order)}" if keys else "")
            + (f" LIMIT {query.limit}" if query.limit else ""))


def raw_answer(storage: Storage, query: Query, ask: Ask, values: dict[str, str],
               runs: int = 1) -> tuple[Answer, float]:
    params: dict[str, str | int] = {"client": ask.client, "start": ask.start_ms,
                                    "end": ask.end_ms, **{f: values[f] for f in query.filters}}
    rows, times = timed(storage, raw_sql(query), params, runs)
    return [(*map(str, row[:-1]), int(row[-1])) for row in rows], statistics.median(times)


def rows(query: Query, body: Any) -> Answer:
    """A JSON answer's rows in the order the API gave them, as raw_answer gives them."""
    return [(*(str(row[f]) for f in query.fields), int(row[query.measure]))
            for row in body["data"]]


def api_answer(url: str, token: str, query: Query, ask: Ask, values: dict[str, str]
               ) -> Answer | int:
    """The answer's rows in the order the API gave them, or its status when not 200."""
    response = httpx.get(url + query.target(ask, values),
                         headers={"Authorization": f"apikey {token}"}, timeout=120)
    if response.status_code != 200:
        return response.status_code
    return rows(query, response.json())


def endpoint(query: Query, values: dict[str, str]) -> Endpoint:
    """`query` as a request of the mix, for the client whose top values are `values`."""
    return Endpoint(query.name, query.template, lambda ask: query.target(ask, values),
                    lambda storage, ask: raw_answer(storage, query, ask, values)[0],
                    lambda body: rows(query, body), query.reads)


