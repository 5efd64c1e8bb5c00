"""When several calling windows are next open at once, by table: the same answer as
`schedule.next_common_opening`, in a binary search instead of a walk over days and zones.

An `OpenTable` holds the UTC intervals in which every one of its specs is open (each spec's intervals
merged, then intersected), over a span of days around the instants it is asked about; the span moves
when a question falls outside it. The engine asks this question about three times per attempt, for a
handful of (campaign schedule, recipient) pairs: a table per pair answers in about a microsecond.

The walk answers where the table would not answer as it does: a spec whose ranges (of any weekday)
are not listed in order of their start (the walk takes the first listed range that has not ended),
and a span in which a spec stays closed for a week or more (the walk looks 8 local days ahead, then
gives up). tests/unit/test_open_times.py checks the two agree. Pure."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from dialwave.domain.schedule import WeeklyWindows, _intervals_on, _local_day, next_common_opening

SPAN = timedelta(days=45)  # a table covers this much ahead of the instant that built it
MARGIN = timedelta(days=1)  # ... and this much before it


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching intervals joined, in order."""
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _intersected(
    x: list[tuple[datetime, datetime]], y: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    i = j = 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def _spec_intervals(spec: WeeklyWindows, low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
    """Every interval of the spec that may hold an instant in [low, high] (a range lasts at most a day,
    so one that holds an instant starts on its local day or the day before)."""
    first = _local_day(low, spec.zone) - timedelta(days=1)
    last = _local_day(high, spec.zone) + timedelta(days=1)
    found: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        found.extend(_intervals_on(spec, day))
        day += timedelta(days=1)
    return _merged(found)


def _in_order(spec: WeeklyWindows) -> bool:
    for ranges in (spec.ranges, *(r for _, r in spec.by_day)):
        starts = [start for start, _ in ranges]
        if starts != sorted(starts):
            return False
    return True


FORTNIGHT = timedelta(days=14)  # the engine's limit (earliest): made once, not per question
LONG_GAP = timedelta(days=7)  # closed this long: the walk's 8-day look-ahead may not see the reopening


class OpenTable:
    def __init__(
        self, specs: Sequence[WeeklyWindows], walk: Callable[[datetime], datetime | None] | None = None
    ) -> None:
        self.specs = tuple(specs)
        self.walk = walk  # next_common_opening(specs, t), maybe cached; used where the table is not exact
        self.in_order = all(_in_order(spec) for spec in self.specs)
        self.exact = self.in_order  # and, per span, no spec closed for a week or more (see above)
        self.low: datetime | None = None
        self.high: datetime | None = None
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        # the last question and its answer: a claim asks about its leads at one instant (the same
        # object, held here: no other object can have its identity), and the leads of a place share
        # its table
        self.asked_at: datetime | None = None
        self.asked_days = 0
        self.answer: datetime | None = None
        # the interval the last instant found open was in (of an exact span): an instant inside it is
        # open, its own answer (the dial-time checks of a place's leads fall in its current interval)
        self.open_from: datetime | None = None
        self.open_until: datetime | None = None

    def _build(self, t: datetime) -> None:
        low, high = t - MARGIN, t + SPAN
        common: list[tuple[datetime, datetime]] | None = None
        self.exact = self.in_order
        for spec in self.specs:
            mine = _spec_intervals(spec, low, high)
            edges = [low, *(x for pair in mine for x in pair), high]
            if any(edges[i + 1] - edges[i] >= LONG_GAP for i in range(0, len(edges), 2)):
                self.exact = False  # closed for a week or more somewhere in the span
            common = mine if common is None else _intersected(common, mine)
        kept = [(a, b) for a, b in common or [] if b > low and a < high]
        self.low, self.high = low, high
        self.starts = [a for a, _ in kept]
        self.ends = [b for _, b in kept]

    def next_opening(self, t: datetime, *, limit_days: int = 14) -> datetime | None:
        """As next_common_opening(specs, t, limit_days=limit_days)."""
        if t is self.asked_at and limit_days == self.asked_days:
            return self.answer
        found = self._next_opening(t, limit_days)
        self.asked_at, self.asked_days, self.answer = t, limit_days, found
        return found

    def _next_opening(self, t: datetime, limit_days: int) -> datetime | None:
        if not self.specs:
            return t
        if not self.in_order:
            return self._walk(t, limit_days)
        if self.open_from is not None and self.open_from < t < self.open_until and limit_days >= 0:  # type: ignore[operator]
            return t  # as below: max(start, t) is t, within any limit
        deadline = t + (FORTNIGHT if limit_days == 14 else timedelta(days=limit_days))
        if self.low is None or self.high is None or t < self.low or deadline + MARGIN > self.high:
            self._build(t)
        i = bisect_right(self.ends, t)  # the first interval that ends after t
        if not self.exact or i == len(self.ends):  # or nothing opens within the span: the walk says
            return self._walk(t, limit_days)
        start = self.starts[i]
        found = max(start, t)
        if start <= t:
            self.open_from, self.open_until = start, self.ends[i]
        return found if found <= deadline else None

    def _walk(self, t: datetime, limit_days: int) -> datetime | None:
        if self.walk is not None and limit_days == 14:
            return self.walk(t)
        return next_common_opening(self.specs, t, limit_days=limit_days)
