"""The virtual clock moves only forward, to the instant it is set to, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialwave.clock import VirtualClock

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_set_moves_to_the_instant_in_utc_and_never_back() -> None:
    clock = VirtualClock(T0)
    clock.set(datetime(2026, 3, 2, 10, 0, 1, 5, tzinfo=timezone(timedelta(hours=-4))))
    assert clock.now() == T0 + timedelta(seconds=1, microseconds=5) and clock.now().tzinfo is UTC
    clock.set(clock.now())  # the same instant again: no move, no error
    with pytest.raises(ValueError):
        clock.set(T0)
    with pytest.raises(ValueError):
        clock.advance(timedelta(microseconds=-1))
    clock.advance(timedelta(seconds=2))
    assert clock.now() == T0 + timedelta(seconds=3, microseconds=5)
