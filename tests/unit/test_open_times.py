"""The open-interval table answers "when are all these windows next open at once?" exactly as the
walk over days (`next_common_opening`) does: across DST, midnight, 24:00, touching and overlapping
ranges, several zones, and the 14-day limit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain.open_times import OpenTable
from dialwave.domain.schedule import WeeklyWindows, next_common_opening

ZONES = ["UTC", "America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def specs(draw: st.DrawFn) -> WeeklyWindows:
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.sets(st.integers(1, 7), min_size=1))
    count = draw(st.integers(1, 3))
    ranges = []
    for _ in range(count):
        start = draw(st.integers(0, 24 * 4 - 1)) * 15
        end = draw(st.integers(1, 24 * 4)) * 15
        ranges.append((hhmm(start), hhmm(end) if end < 1440 else "24:00"))
    if draw(st.booleans()):
        ranges.sort()
    spec = WeeklyWindows.of(zone, days, ranges)
    by_day = ()
    if draw(st.booleans()):  # a weekday with ranges of its own (Texas: Sunday 12:00-21:00)
        start = draw(st.integers(0, 22)) * 60
        by_day = ((draw(st.integers(1, 7)), ((start, start + draw(st.integers(1, 120)) * 1),)),)
    closed_on = None
    if draw(st.booleans()):  # holidays; a long closure makes the walk give up after 8 days
        first = draw(st.integers(1, 28))
        length = draw(st.sampled_from([1, 2, 9, 16]))
        closed_on = _Closed(draw(st.integers(1, 12)), first, length)
    return WeeklyWindows(spec.zone, spec.days, spec.ranges, by_day, closed_on)


class _Closed:
    """Closed `length` days from `first` of `month`, every year (hashable, as rules' holidays are)."""

    def __init__(self, month: int, first: int, length: int) -> None:
        self.month, self.first, self.length = month, first, length

    def __call__(self, day: date) -> bool:
        return day.month == self.month and self.first <= day.day < self.first + self.length


instants = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))


@settings(max_examples=600, deadline=None)
@given(windows=st.lists(specs(), min_size=1, max_size=3), ts=st.lists(instants, min_size=1, max_size=6))
def test_the_table_agrees_with_the_walk(windows: list[WeeklyWindows], ts: list[datetime]) -> None:
    table = OpenTable(windows)  # one table asked several times, in any order (it moves its span)
    for t in ts:
        assert table.next_opening(t) == next_common_opening(windows, t)
        later = t + timedelta(minutes=7, seconds=13, microseconds=5)
        assert table.next_opening(later) == next_common_opening(windows, later)


@settings(max_examples=300, deadline=None)
@given(windows=st.lists(specs(), min_size=1, max_size=2), t=instants, limit=st.integers(0, 20))
def test_the_limit_is_the_walks(windows: list[WeeklyWindows], t: datetime, limit: int) -> None:
    assert OpenTable(windows).next_opening(t, limit_days=limit) == next_common_opening(windows, t, limit_days=limit)


def test_an_engine_like_sequence_of_instants() -> None:
    """Recipient-local windows and legal hours, asked along a run: instants close together, increasing."""
    windows = [
        WeeklyWindows.of("America/Chicago", [1, 2, 3, 4, 5], [("09:00", "12:00"), ("13:00", "19:00")]),
        WeeklyWindows.of("America/Chicago", range(1, 8), [("08:00", "21:00")]),
    ]
    table = OpenTable(windows)
    t = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    for _ in range(5000):
        assert table.next_opening(t) == next_common_opening(windows, t)
        t += timedelta(minutes=17, seconds=3)
    assert table.next_opening(t) == next_common_opening(windows, t)


def test_no_spec_is_always_open() -> None:
    t = datetime(2026, 3, 2, tzinfo=UTC)
    assert OpenTable([]).next_opening(t) == next_common_opening([], t) == t


def test_instants_at_the_edges_and_inside_the_interval_last_found_open() -> None:
    """The table remembers the interval its last open instant was in; instants at its edges, inside it
    and past it, with the limit or not, still answer as the walk."""
    windows = [
        WeeklyWindows.of("America/Chicago", [1, 2, 3, 4, 5], [("09:00", "12:00"), ("13:00", "19:00")]),
        WeeklyWindows.of("America/Chicago", range(1, 8), [("08:00", "21:00")]),
    ]
    table = OpenTable(windows)
    first = table.next_opening(datetime(2026, 3, 2, 16, 0, tzinfo=UTC))
    assert first == datetime(2026, 3, 2, 16, 0, tzinfo=UTC) and table.open_from is not None
    start, end = table.open_from, table.open_until
    assert start is not None and end is not None
    tick = timedelta(microseconds=1)
    for t in [start, start + tick, start + (end - start) / 2, end - tick, end, end + tick, start - tick, start]:
        for limit in (14, 0, 3):
            assert table.next_opening(t, limit_days=limit) == next_common_opening(windows, t, limit_days=limit)
