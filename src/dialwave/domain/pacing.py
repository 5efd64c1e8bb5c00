"""Pace: attempts start on a grid of slots 1/rate apart, so any 10 s holds at most rate x 10 + 1 starts.

A slot is never handed out in the past: when the grid has fallen behind `now` (nothing was due, or
concurrency was full), it restarts at `now`, so unused slots are not saved up into a burst.
Pure: the caller passes the times."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Pacer:
    rate: float  # attempts per second
    origin: datetime | None = None
    index: int = 0  # slots handed out since origin

    def _slot(self, k: int) -> datetime:
        """The k-th slot after the origin, rounded up to the microsecond (timedelta built positionally:
        the keyword form costs a dict per slot)."""
        assert self.origin is not None
        return self.origin + timedelta(0, 0, math.ceil(k / self.rate * 1_000_000))

    def next_slot(self, now: datetime) -> datetime:
        if self.origin is None:
            return now
        return max(now, self._slot(self.index))

    def take(self, now: datetime, until: datetime, most: int) -> list[datetime]:
        """Hand out up to `most` slots in [now, until], in order; each is used or given back."""
        if most <= 0:
            return []
        if self.origin is None or self._slot(self.index) < now:
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
        """Return the last `count` slots handed out (they were not used)."""
        self.index = max(0, self.index - count)

    def set_rate(self, rate: float, now: datetime) -> None:
        """Change pace from the next slot on; slots already handed out stay."""
        if rate == self.rate:
            return
        nxt = self.next_slot(now)
        self.rate, self.origin, self.index = rate, nxt, 0
