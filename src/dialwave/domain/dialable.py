"""When may a lead be dialed? The campaign's windows (in its zone, or the recipient's with
`recipient_local_time`), the recipient's legal hours, `start_at` / initial delay and `end_at`, and the
caps on attempts per number in a rolling 24 h. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialwave.domain.campaign_config import CampaignConfig, Schedule
from dialwave.domain.legal import Recipient, legal_windows, recipient
from dialwave.domain.schedule import WeeklyWindows, is_open, next_common_opening, next_opening

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class CampaignTimes:
    zone: str
    days: tuple[int, ...]
    ranges: tuple[tuple[str, str], ...]
    recipient_local_time: bool
    not_before: datetime | None  # start_at, and the initial delay after the start
    end_at: datetime | None

    @classmethod
    def of(cls, schedule: Schedule, not_before: datetime | None) -> CampaignTimes:
        return cls(
            schedule.timezone,
            tuple(sorted(schedule.days_of_week)),
            tuple((w.start, w.end) for w in schedule.windows),
            schedule.recipient_local_time,
            not_before,
            schedule.end_at,
        )


@lru_cache(maxsize=4096)
def _specs(times: CampaignTimes, who: Recipient) -> tuple[WeeklyWindows, ...]:
    zones = who.zones if times.recipient_local_time else (times.zone,)
    campaign = [WeeklyWindows.of(zone, times.days, times.ranges) for zone in zones]
    return tuple(campaign + legal_windows(who))


def not_before(config: CampaignConfig, started_at: datetime | None) -> datetime | None:
    """No dial before start_at, and none before `initial_delay_seconds` after the campaign went live."""
    bounds = [b for b in (config.schedule.start_at, started_at) if b is not None]
    if not bounds:
        return None
    return max(bounds) + timedelta(seconds=config.pacing.initial_delay_seconds)


def earliest(times: CampaignTimes, number: str, lead_timezone: str | None, t: datetime) -> datetime | None:
    """The first instant >= t at which this lead may be dialed, or None if none comes within 14 days
    (or before end_at)."""
    who = recipient(number, lead_timezone, times.zone)
    start = max(t, times.not_before) if times.not_before else t
    found = next_common_opening(_specs(times, who), start)
    if found is None or (times.end_at is not None and found >= times.end_at):
        return None
    return found


def dial_cap(number: str) -> int | None:
    """The regional limit on attempts per rolling 24 h for this number, if any."""
    return recipient(number, None, "UTC").rule.max_attempts_per_24h


def cap_for(number: str, org_cap: int | None) -> int | None:
    """Attempts allowed to this number per rolling 24 h: the stricter of the organization's cap
    (`number_attempts_per_24h`) and the regional rule; None when neither limits it."""
    caps = [c for c in (org_cap, dial_cap(number)) if c is not None]
    return min(caps) if caps else None


def capped_until(times: list[datetime], cap: int, when: datetime) -> datetime:
    """The first instant >= when at which fewer than `cap` attempts lie in the rolling 24 h before it."""
    window = sorted(t for t in times if t > when - DAY)
    if len(window) < cap:
        return when
    return window[len(window) - cap] + DAY


def _local(t: datetime, zone: str) -> str:
    local = t.astimezone(ZoneInfo(zone))
    return f"{local:%a %H:%M} {zone}"


def waiting_reason(times: CampaignTimes, number: str, lead_timezone: str | None, now: datetime) -> str | None:
    """Why a lead cannot be dialed at `now`, in a few words, with the next opening in the zone that
    holds it back (None when nothing in the schedule or the law does: a retry interval, a cooldown or a
    per-number cap then)."""
    if times.not_before is not None and now < times.not_before:
        return (
            f"schedule: first dial at {times.not_before.astimezone(UTC):%Y-%m-%d %H:%M} UTC (start_at, initial delay)"
        )
    who = recipient(number, lead_timezone, times.zone)
    zones = who.zones if times.recipient_local_time else (times.zone,)
    for zone in zones:
        window = WeeklyWindows.of(zone, times.days, times.ranges)
        if not is_open(window, now):
            opening = next_opening(window, now)
            return "calling window: " + (f"next opening {_local(opening, zone)}" if opening else "never opens")
    for legal in legal_windows(who):
        if not is_open(legal, now):
            opening = next_opening(legal, now)
            rule = "" if who.rule.key == "default" else f" ({who.rule.key})"
            when = f"next opening {_local(opening, legal.zone)}" if opening else "closed"
            return f"legal hours{rule}: {when}"
    return None
