"""The row cap that bounds every statistics answer (QUERY_MAX_ROWS, architecture §15).

A dashboard draws no more than some thousands of rows, and Gcore's SDK reads a whole answer
into memory, so an answer past the cap is refused with a 422 that says how to narrow the
request rather than cut short (a truncated table would read as complete). The engine is asked
for one row more than the cap (LIMIT), so that an oversized answer costs at most the cap in
this process's memory, whatever the client's data.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass


class TooManyRows(Exception):
    """The answer would have more rows than the cap; the message says how to narrow it."""


@dataclass(frozen=True)
class RowCap:
    max_rows: int

    def engine_limit(self, asked: int | None) -> int:
        """The statement's LIMIT: the request's own `limit` when the cap holds it, else one
        row past the cap, which is how an oversized answer is told from a full one."""
        return asked if asked is not None and asked <= self.max_rows else self.max_rows + 1

    def check(self, rows: Sized, narrow: str) -> None:
        """TooManyRows when `rows` exceeds the cap; `narrow` names the endpoint's ways to ask
        for fewer rows."""
        if len(rows) > self.max_rows:
            raise TooManyRows(f"the answer would have more than {self.max_rows} rows; narrow "
                              f"the request: {narrow}")
