"""Calling windows in a time zone: "is it open at t?" and "when does it next open?", DST-correct.

A `WeeklyWindows` is a set of wall-clock ranges on some weekdays, read in one IANA zone. A range with
`end <= start` crosses midnight and belongs to the weekday it starts on; `24:00` is a valid end.

Both questions are answered from the same UTC intervals, so they always agree:
- a start that falls in a spring-forward gap opens at the transition (02:30 -> 03:00);
- an end that falls in the gap closes at the transition;
- an ambiguous (fall-back) start takes its first occurrence and an ambiguous end its last, so an
  interval covers the repeated hour once, and is never opened twice.
Pure functions; the caller passes `now`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
HORIZON_DAYS = 8  # a weekly pattern repeats within a week; one more day covers ranges across midnight


Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class WeeklyWindows:
    zone: str
    days: frozenset[int]  # ISO weekdays, 1 = Monday
    ranges: Ranges  # (start, end) in minutes after midnight; end <= start crosses midnight
    by_day: tuple[tuple[int, Ranges], ...] = ()  # weekdays with ranges of their own (Texas: Sunday 12:00-21:00)
    closed_on: Callable[[date], bool] | None = None  # whole days closed (a rule's holidays), by local date

    @classmethod
    def of(cls, zone: str, days: Iterable[int], ranges: Iterable[tuple[str, str]]) -> WeeklyWindows:
        return cls(zone, frozenset(days), tuple((minutes(a), minutes(b)) for a, b in ranges))

    def __hash__(self) -> int:  # computed once: a key of the hot caches below
        found: int | None = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.zone, self.days, self.ranges, self.by_day, self.closed_on))
            object.__setattr__(self, "_hash", found)
        return found

    def ranges_on(self, weekday: int) -> Ranges:
        for day, ranges in self.by_day:
            if day == weekday:
                return ranges
        return self.ranges


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _exists(local: datetime) -> bool:
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def _to_utc(day: date, minute: int, zone: ZoneInfo, *, is_end: bool) -> datetime:
    """The UTC instant of wall-clock `minute` on `day` (1440 = next midnight), with the DST rules above."""
    local = datetime.combine(day + timedelta(days=minute // 1440), time(0), tzinfo=zone) + timedelta(
        minutes=minute % 1440
    )
    local = local.replace(fold=1 if is_end else 0)
    if _exists(local):
        return local.astimezone(UTC)
    # In a gap: fold=0 reads it with the old offset (lands after the jump), fold=1 with the new one
    # (lands before it). The transition lies between; find it to the second.
    low = local.replace(fold=1).astimezone(UTC)
    high = local.replace(fold=0).astimezone(UTC)
    if low > high:
        low, high = high, low
    offset_after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == offset_after:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


@lru_cache(maxsize=65536)
def _intervals_on(windows: WeeklyWindows, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """UTC intervals of the ranges that start on local `day`."""
    if day.isoweekday() not in windows.days or (windows.closed_on is not None and windows.closed_on(day)):
        return ()
    zone = _zone(windows.zone)
    out = []
    for start, end in windows.ranges_on(day.isoweekday()):
        if end <= start:
            end += 1440
        begin = _to_utc(day, start, zone, is_end=False)
        finish = _to_utc(day, end, zone, is_end=True)
        if finish > begin:
            out.append((begin, finish))
    return tuple(out)


def _local_day(t: datetime, zone: str) -> date:
    return t.astimezone(_zone(zone)).date()


def intervals(windows: WeeklyWindows, t: datetime, days_ahead: int = HORIZON_DAYS) -> list[tuple[datetime, datetime]]:
    """Intervals that may contain `t` or start after it, in order (one day back for ranges across midnight)."""
    first = _local_day(t, windows.zone) - DAY
    out: list[tuple[datetime, datetime]] = []
    for i in range(days_ahead + 2):
        out.extend(_intervals_on(windows, first + timedelta(days=i)))
    return out


def is_open(windows: WeeklyWindows, t: datetime) -> bool:
    return any(a <= t < b for a, b in intervals(windows, t, days_ahead=1))


def next_opening(windows: WeeklyWindows, t: datetime) -> datetime | None:
    """`t` if open at t, else the start of the next interval; None when nothing opens within 8 days."""
    first = _local_day(t, windows.zone) - DAY
    for i in range(HORIZON_DAYS + 2):
        for a, b in _intervals_on(windows, first + timedelta(days=i)):
            if b > t:
                return max(a, t)
    return None


def closes_at(windows: WeeklyWindows, t: datetime) -> datetime | None:
    """When the interval holding `t` ends (None if closed at t)."""
    for a, b in intervals(windows, t, days_ahead=1):
        if a <= t < b:
            return b
    return None


def next_common_opening(specs: Sequence[WeeklyWindows], t: datetime, *, limit_days: int = 14) -> datetime | None:
    """The first instant >= t when every spec is open at once (None if none within `limit_days`).

    Each round moves t to the latest "next opening" among the specs; it stops when all agree."""
    if not specs:
        return t
    deadline = t + timedelta(days=limit_days)
    current = t
    for _ in range(200):
        latest = current
        for spec in specs:
            opening = next_opening(spec, current)
            if opening is None:
                return None
            latest = max(latest, opening)
        if latest == current:
            return current
        if latest > deadline:
            return None
        current = latest
    return None


# -- many specs at once (a number timed in every zone of its country: 42 for NANP) -----------------------
COMMON_DAYS = 14


def _intersect(
    a: Sequence[tuple[datetime, datetime]], b: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


@lru_cache(maxsize=4096)
def _common_intervals(specs: tuple[WeeklyWindows, ...], day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC intervals in which every spec is open, from (UTC) `day` - 1 to `day` + 16, in order."""
    common: list[tuple[datetime, datetime]] | None = None
    for spec in specs:
        zone = _zone(spec.zone)
        first = datetime.combine(day - 2 * DAY, time(0), tzinfo=UTC).astimezone(zone).date()
        own: list[tuple[datetime, datetime]] = []
        for i in range(COMMON_DAYS + 5):
            own.extend(_intervals_on(spec, first + timedelta(days=i)))
        own.sort()
        common = own if common is None else _intersect(common, own)
        if not common:
            return ()
    return tuple(common or ())


def common_opening(specs: tuple[WeeklyWindows, ...], t: datetime) -> datetime | None:
    """`next_common_opening` for many specs: from their intersected intervals, computed once per UTC day
    (the same answer: tests/unit/test_schedule.py compares them)."""
    if not specs:
        return t
    deadline = t + timedelta(days=COMMON_DAYS)
    for a, b in _common_intervals(specs, t.astimezone(UTC).date()):
        if b > t:
            opening = max(a, t)
            return opening if opening <= deadline else None
    return None
