"""The row cap that bounds every statistics answer (QUERY_MAX_ROWS, architecture §15).

A dashboard draws no more than some thousands of rows, and Gcore's SDK reads a whole answer
into memory, so an answer past the cap is refused with a 422 that says how to narrow the
request rather than cut short (a truncated table would read as complete). The engine is asked
for one row more than the cap (LIMIT), so that an oversized answer costs at most the cap in
this process's memory, whatever the client's data. A request without a `limit` of its own has
one row per key of its GROUP BY, so the engine is also told to stop aggregating once past the
cap: it would otherwise count the whole window first (the all-time request of issue 19 took
+867 MB of engine memory with two at once) only for the 422.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

from viewstats.core.storage import QuerySettings, StorageError


class TooManyRows(Exception):
    """The answer would have more rows than the cap; the message says how to narrow it."""


@dataclass(frozen=True)
class RowCap:
    max_rows: int

    def engine_limit(self, asked: int | None) -> int:
        """The statement's LIMIT: the request's own `limit` when the cap holds it, else one
        row past the cap, which is how an oversized answer is told from a full one."""
        return asked if asked is not None and asked <= self.max_rows else self.max_rows + 1

    def engine_settings(self, asked: int | None) -> QuerySettings:
        """For a request without its own `limit`: the engine refuses it (TOO_MANY_ROWS) as soon
        as its GROUP BY has more keys than the cap. A request with a `limit` may group many
        more keys than it answers (popular's top 100 of all videos), so it has none."""
        if asked is not None:
            return {}
        return {"max_rows_to_group_by": self.max_rows + 1, "group_by_overflow_mode": "throw"}

    def check(self, rows: Sized, narrow: str) -> None:
        """TooManyRows when `rows` exceeds the cap; `narrow` names the endpoint's ways to ask
        for fewer rows."""
        if len(rows) > self.max_rows:
            raise self.refusal(narrow)

    def overflowed(self, exc: StorageError, narrow: str) -> TooManyRows | None:
        """The 422 for an engine that stopped at `engine_settings`' limit, else None."""
        return self.refusal(narrow) if "(TOO_MANY_ROWS)" in str(exc) else None

    def refusal(self, narrow: str) -> TooManyRows:
        return TooManyRows(f"the answer would have more than {self.max_rows} rows; narrow the "
                           f"request: {narrow}")
