"""The one clock abstraction: production reads the system clock, tests and simulation a virtual one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < _ZERO:
            raise ValueError("time does not go backwards")
        self._now += delta

    def set(self, when: datetime) -> None:
        """Move to `when` (the virtual runner, at every tick): `advance` to it, without the difference."""
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("time does not go backwards")
        self._now = when


_ZERO = timedelta(0)
