"""Pure engine rules: windows across DST and midnight, legal hours, pacing, retry decisions, outcomes, caller ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain.caller_ids import Caller, choose
from dialwave.domain.campaign_config import Retry
from dialwave.domain.legal import recipient
from dialwave.domain.outcomes import classify, outcome_for_sip
from dialwave.domain.pacing import Pacer
from dialwave.domain.retry import decide
from dialwave.domain.schedule import WeeklyWindows, is_open, next_common_opening, next_opening

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


def test_end_2400_and_several_ranges() -> None:
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


def test_legal_zones_and_rules() -> None:
    panhandle = recipient("+18505550123", None, "UTC")
    assert set(panhandle.zones) == {"America/Chicago", "America/New_York"}
    assert panhandle.rule.key == "US-FL" and panhandle.rule.max_attempts_per_24h == 3
    assert recipient("+14055550100", None, "UTC").rule.key == "US-OK"
    assert recipient("+12125550100", None, "UTC").rule.key == "US"
    assert recipient("+18005550199", None, "Europe/Berlin").zones == ("Europe/Berlin",)  # toll-free
    assert recipient("+12125550100", "Asia/Tokyo", "UTC").zones == ("Asia/Tokyo",)  # the lead's own zone wins
    assert recipient("+33612345678", None, "UTC").rule.days == (1, 2, 3, 4, 5)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 500), gaps=st.lists(st.floats(0, 3), min_size=1, max_size=60))
def test_pacer_never_exceeds_rate_in_any_10_seconds(rate: float, gaps: list[float]) -> None:
    pacer = Pacer(rate)
    now = utc(2026, 3, 2, 0, 0)
    starts: list[datetime] = []
    for gap in gaps:
        now += timedelta(seconds=gap)
        starts.extend(pacer.take(now, now + timedelta(seconds=1), 1000))
        if starts and gap > 1:
            pacer.give_back(1)
            starts.pop()
    assert starts == sorted(starts)
    j = 0
    for i, s in enumerate(starts):
        while starts[j] < s - timedelta(seconds=10):
            j += 1
        assert i - j + 1 <= rate * 10 + 1


def test_pacer_is_exact_when_leads_are_plenty() -> None:
    pacer = Pacer(50)
    t0 = utc(2026, 3, 2, 0, 0)
    slots = pacer.take(t0, t0 + timedelta(seconds=60), 10_000)
    assert len([s for s in slots if s < t0 + timedelta(seconds=60)]) == 3000


def test_retry_intervals_repeat_the_last_and_stop_at_the_caps() -> None:
    retry = Retry.model_validate({"max_attempts": 5, "on": {"busy": {"max_retries": 3, "interval_minutes": [10, 30]}}})
    t = utc(2026, 3, 2, 12, 0)
    first = decide(retry, "busy", 1, {}, t)
    assert first.status == "retry_pending" and first.retry_at == t + timedelta(minutes=10)
    second = decide(retry, "busy", 2, first.retries, t)
    assert second.retry_at == t + timedelta(minutes=30)
    third = decide(retry, "busy", 3, second.retries, t)
    assert third.retry_at == t + timedelta(minutes=30)
    assert decide(retry, "busy", 4, third.retries, t).status == "failed"
    capped = Retry.model_validate({"max_attempts": 2, "on": {"busy": {"max_retries": 5}}})
    assert decide(capped, "busy", 2, {"busy": 1}, t).status == "failed"
    assert decide(retry, "answered", 1, {}, t).status == "completed"
    assert decide(retry, "failed", 1, {}, t).status == "failed"  # failed: retries disabled by default


def test_classification_and_sip_table() -> None:
    assert classify("answered", 4, True, 10).outcome == "short_duration"
    assert classify("answered", 40, False, 10).reason == "no_conversion"
    assert classify("answered", 40, None, 10).reason == "answered"
    assert [outcome_for_sip(c) for c in (486, 487, 404, 603, 503, None, 200)] == [
        "busy",
        "no_answer",
        "failed",
        "failed",
        "provider_error",
        "provider_error",
        "answered",
    ]


@pytest.mark.parametrize("strategy", ["weighted", "round_robin", "sticky", "local_presence"])
def test_caller_id_strategies(strategy: str) -> None:
    pool = [Caller("a", "+12125550100", 1), Caller("b", "+14155550100", 3), Caller("c", "+442071234567", 1)]
    everyone = {"a", "b", "c"}
    picks = [choose(strategy, pool, everyone, f"lead{i}", 1, "+14155559999", i) for i in range(400)]
    assert all(p is not None for p in picks)
    ids = [p.phone_number_id for p in picks if p]
    if strategy == "round_robin":
        assert ids[:6] == ["a", "b", "c", "a", "b", "c"]
    if strategy == "weighted":
        assert 0.5 < ids.count("b") / len(ids) < 0.7  # weight 3 of 5
    if strategy == "local_presence":
        assert set(ids) == {"b"}  # same area code (415)
        uk = choose(strategy, pool, everyone, "x", 1, "+447700900123", 0)
        assert uk is not None and uk.phone_number_id == "c"  # same country
    if strategy == "sticky":
        again = [choose(strategy, pool, everyone, f"lead{i}", 2, "+14155559999", 7) for i in range(400)]
        assert [p.phone_number_id for p in again if p] == ids
        own = ids[0]  # lead0's number; when it is busy, lead0 waits rather than switching
        assert choose(strategy, pool, everyone - {own}, "lead0", 3, "+14155559999", 0) is None


def test_retry_after_takes_seconds_or_an_http_date_within_an_hour() -> None:
    from dialwave.telephony.base import retry_after_seconds

    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 02 Mar 2026 15:01:30 GMT", now) == 90
    assert retry_after_seconds("Mon, 02 Mar 2026 14:00:00 GMT", now) == 0  # in the past: no wait
    assert retry_after_seconds("999999", now) == 3600  # capped
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
