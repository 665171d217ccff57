"""The mix's windows (issue 20): never asked before, at random positions over the data, 1 to
365 days long, in five classes with equal weights, as people ask them:

- `utc-days`: whole UTC days, sent as dates;
- `zone-days`: whole days in a zone whose offset is not whole hours (ZONES), sent as date-times
  at that offset (`2024-05-01T00:00:00+05:30` to `2024-05-31T23:59:59+05:30`);
- `hour-edges`: both ends on whole UTC hours, neither on a UTC day;
- `minute-edges`: both ends on whole minutes, neither on a quarter-hour;
- `ms-edges`: both ends on milliseconds, neither on a whole second.
"""

from __future__ import annotations

from benchmarks.asks import DAY_MS, HOUR_MS, Ask, Windows

MINUTE_MS = 60_000
QUARTER_MS = 15 * MINUTE_MS
MAX_DAYS = 365
CLASSES = ("utc-days", "zone-days", "hour-edges", "minute-edges", "ms-edges")
# Offsets in minutes of zones whose days start off the whole hour: India, Newfoundland,
# central Australia, Nepal, the Chatham Islands' summer, Myanmar, the Marquesas, Eucla.
ZONES = (330, -210, 570, 345, 765, 390, -570, 525)
# An edge class's ends: the unit they fall on, and the coarser one they must not fall on (else
# the window would belong to a coarser class).
_EDGES = {"hour-edges": (HOUR_MS, DAY_MS), "minute-edges": (MINUTE_MS, QUARTER_MS),
          "ms-edges": (1, 1000)}


class ClassWindows:
    """Windows of CLASSES over what `windows` spans, none asked before by this object."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.asked: set[tuple[int, int, int]] = set()

    def new(self, client: int, window_class: str) -> Ask:
        while True:
            ask = self._draw(client, window_class)
            if (client, ask.start_ms, ask.end_ms) not in self.asked:
                self.asked.add((client, ask.start_ms, ask.end_ms))
                return ask

    def _draw(self, client: int, window_class: str) -> Ask:
        rng, first, end = self.windows.rng, self.windows.first, self.windows.end
        span_days = (end - first) // DAY_MS
        if window_class in ("utc-days", "zone-days"):
            # A day of margin on both sides, for the zones' days that start before or end after
            # the UTC day they are counted from.
            days = rng.randint(1, min(MAX_DAYS, span_days - 2))
            start = first + rng.randint(1, span_days - days - 1) * DAY_MS
            if window_class == "utc-days":
                return Ask(client, start, start + days * DAY_MS, True)
            zone = rng.choice(ZONES)
            local_midnight = start - zone * MINUTE_MS
            return Ask(client, local_midnight, local_midnight + days * DAY_MS, False, zone)
        unit, coarser = _EDGES[window_class]
        while True:
            length = rng.randint(DAY_MS, min(MAX_DAYS, span_days) * DAY_MS)
            start = first + rng.randrange(end - first - length) // unit * unit
            stop = (start + length) // unit * unit
            if start % coarser and stop % coarser:
                return Ask(client, start, stop, False)
