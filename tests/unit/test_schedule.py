"""Weekly calling windows open and close at the right instants across DST transitions, midnight and 24:00."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain.schedule import WeeklyWindows, common_opening, is_open, next_common_opening, next_opening

NY = "America/New_York"
ALL = range(1, 8)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_spring_forward_opening_in_the_gap_opens_at_the_transition() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT; a 02:30 opening does not exist that day: it opens at 03:00 EDT.
    w = WeeklyWindows.of(NY, ALL, [("02:30", "05:00")])
    assert next_opening(w, utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 7, 0)
    assert not is_open(w, utc(2026, 3, 8, 6, 59))
    assert is_open(w, utc(2026, 3, 8, 7, 0))
    # the day before and after, 02:30 local as usual
    assert next_opening(w, utc(2026, 3, 7, 5, 0)) == utc(2026, 3, 7, 7, 30)
    assert next_opening(w, utc(2026, 3, 9, 5, 0)) == utc(2026, 3, 9, 6, 30)


def test_window_entirely_in_the_gap_is_skipped_that_day() -> None:
    w = WeeklyWindows.of(NY, ALL, [("02:10", "02:50")])
    assert next_opening(w, utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 9, 6, 10)


def test_fall_back_hour_is_opened_once() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-02:00 happens twice; the window covers both, opens once.
    w = WeeklyWindows.of(NY, ALL, [("01:00", "02:00")])
    first = next_opening(w, utc(2026, 11, 1, 0, 0))
    assert first == utc(2026, 11, 1, 5, 0)  # 01:00 EDT
    assert is_open(w, utc(2026, 11, 1, 6, 30))  # the repeated 01:30, EST
    assert next_opening(w, utc(2026, 11, 1, 7, 0)) == utc(2026, 11, 2, 6, 0)  # not again the same night


def test_range_across_midnight_belongs_to_its_start_day() -> None:
    w = WeeklyWindows.of("UTC", [5], [("22:00", "02:00")])  # Friday night only
    assert is_open(w, utc(2026, 3, 7, 1, 0))  # Saturday 01:00, still Friday's range
    assert not is_open(w, utc(2026, 3, 7, 22, 30))  # Saturday 22:30: not a Friday
    assert next_opening(w, utc(2026, 3, 7, 3, 0)) == utc(2026, 3, 13, 22, 0)


def test_a_range_ending_at_2400_stays_open_until_midnight_and_the_next_range_opens_after_a_gap() -> None:
    w = WeeklyWindows.of("UTC", ALL, [("09:00", "12:00"), ("13:00", "24:00")])
    assert next_opening(w, utc(2026, 3, 2, 12, 30)) == utc(2026, 3, 2, 13, 0)
    assert is_open(w, utc(2026, 3, 2, 23, 59))
    assert not is_open(w, utc(2026, 3, 3, 0, 0))


def test_no_opening_returns_none() -> None:
    a = WeeklyWindows.of("UTC", [1], [("09:00", "10:00")])
    b = WeeklyWindows.of("UTC", [2], [("09:00", "10:00")])
    assert next_common_opening([a, b], utc(2026, 3, 2, 0, 0)) is None


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(
        ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
    ),
    start=st.integers(0, 23 * 60),
    length=st.integers(1, 23 * 60),
    days=st.sets(st.integers(1, 7), min_size=1),
    t=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
)
def test_next_opening_is_open_and_nothing_opens_before_it(
    zone: str, start: int, length: int, days: set[int], t: datetime
) -> None:
    end = (start + length) % 1440 or 1440
    hhmm = [(f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}")]
    w = WeeklyWindows.of(zone, days, hhmm)
    opening = next_opening(w, t)
    assert opening is not None
    assert opening >= t and is_open(w, opening)
    # sample instants between t and the opening: all closed
    step = (opening - t) / 17
    for i in range(17):
        assert not is_open(w, t + step * i) or opening == t


ZONES = ["America/New_York", "Pacific/Guam", "Pacific/Pago_Pago", "America/St_Johns", "Europe/Paris", "UTC"]


@st.composite
def spec(draw: st.DrawFn) -> WeeklyWindows:
    start = draw(st.integers(0, 47)) * 30
    length = draw(st.integers(1, 48)) * 30
    days = draw(st.sets(st.integers(1, 7), min_size=1))
    end = (start + length) % 1440 or 1440
    return WeeklyWindows.of(
        draw(st.sampled_from(ZONES)), days, [(f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}")]
    )


@given(
    specs=st.lists(spec(), min_size=1, max_size=8),
    t=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
)
@settings(max_examples=300, deadline=None)
def test_common_opening_of_many_specs_agrees_with_the_round_by_round_search(
    specs: list[WeeklyWindows], t: datetime
) -> None:
    expected = next_common_opening(specs, t)
    found = common_opening(tuple(specs), t)
    if expected is not None:
        assert found == expected
    elif found is not None:  # the round-by-round search gives up when a spec is closed for 8 days
        assert all(is_open(s, found) for s in specs)
