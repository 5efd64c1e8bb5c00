"""The summary's peak concurrency: the sweep over starts and ends sorted apart counts what the sweep
over one sorted list of (instant, +1/-1) points counted (ends before starts at the same instant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.simulate import peak_concurrency

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
instant = st.integers(0, 40).map(lambda s: T0 + timedelta(seconds=s))
interval = st.tuples(instant, st.one_of(st.none(), st.integers(0, 20))).map(
    lambda p: (p[0], None if p[1] is None else p[0] + timedelta(seconds=p[1]))
)


def one_sweep(intervals: list[tuple[datetime, datetime | None]]) -> int:
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals if b is not None])
    level = top = 0
    for _, step in points:
        level += step
        top = max(top, level)
    return top


@settings(max_examples=500, deadline=None)
@given(st.lists(interval, max_size=30))
def test_the_split_sweep_counts_what_one_sweep_counted(intervals: list[tuple[datetime, datetime | None]]) -> None:
    assert peak_concurrency(intervals) == one_sweep(intervals)


def test_a_call_ending_as_another_starts_does_not_overlap_it() -> None:
    one, two = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    assert peak_concurrency([(T0, one), (one, two)]) == 1
    assert peak_concurrency([(T0, two), (one, two), (two, None)]) == 2
    assert peak_concurrency([]) == 0
