"""The pacer hands out call start slots at the campaign's rate, never faster in any 10 seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain.pacing import Pacer


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


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
