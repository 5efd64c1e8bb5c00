"""Pace: attempts start on a grid of slots 1/rate apart, so any 10 s holds at most rate x 10 + 1 starts.

A slot not used in time is not saved up (no bursts after a quiet spell): when the grid falls behind
`now` by more than `max_lag`, it restarts at `now`. Pure: the caller passes the times."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_LAG = timedelta(seconds=1)


def _us(seconds: float) -> timedelta:
    return timedelta(microseconds=math.ceil(seconds * 1_000_000))


@dataclass
class Pacer:
    rate: float  # attempts per second
    origin: datetime | None = None
    index: int = 0  # slots handed out since origin
    max_lag: timedelta = field(default=MAX_LAG)

    def _slot(self, k: int) -> datetime:
        assert self.origin is not None
        return self.origin + _us(k / self.rate)

    def next_slot(self, now: datetime) -> datetime:
        if self.origin is None or self._slot(self.index) < now - self.max_lag:
            return now
        return self._slot(self.index)

    def take(self, now: datetime, until: datetime, most: int) -> list[datetime]:
        """Hand out up to `most` slots in [now - lag, until], in order; each is used or lost."""
        if most <= 0:
            return []
        if self.origin is None or self._slot(self.index) < now - self.max_lag:
            self.origin, self.index = now, 0
        slots: list[datetime] = []
        while len(slots) < most:
            slot = self._slot(self.index)
            if slot > until:
                break
            slots.append(slot)
            self.index += 1
        return slots

    def give_back(self, count: int) -> None:
        """Return the last `count` slots handed out (claimed leads that did not pass their guards)."""
        self.index = max(0, self.index - count)

    def set_rate(self, rate: float, now: datetime) -> None:
        """Change pace from the next slot on; slots already handed out stay."""
        if rate == self.rate:
            return
        nxt = self.next_slot(now) if self.origin is not None else now
        self.rate, self.origin, self.index = rate, max(nxt, now), 0
