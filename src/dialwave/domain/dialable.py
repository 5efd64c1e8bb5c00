"""When may a lead be dialed? The campaign's windows (in its zone, or the recipient's with
`recipient_local_time`), the recipient's legal hours (by weekday, with the holidays its rules close),
`start_at` / initial delay and `end_at`, the caps on attempts per number in rolling windows, and the
pause after a refusal. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.campaign_dialing import Schedule
from dialwave.domain.legal import Recipient, UnknownLocation, legal_windows, recipient
from dialwave.domain.open_times import OpenTable
from dialwave.domain.rule_book import RegionalRule
from dialwave.domain.schedule import WeeklyWindows, common_opening, is_open, next_common_opening, next_opening

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class CampaignTimes:
    zone: str
    days: tuple[int, ...]
    ranges: tuple[tuple[str, str], ...]
    recipient_local_time: bool
    not_before: datetime | None  # start_at, and the initial delay after the start
    end_at: datetime | None
    unknown: UnknownLocation = "all_zones"  # compliance.unknown_location

    @classmethod
    def of(
        cls, schedule: Schedule, not_before: datetime | None, unknown: UnknownLocation = "all_zones"
    ) -> CampaignTimes:
        return cls(
            schedule.timezone,
            tuple(sorted(schedule.days_of_week)),
            tuple((w.start, w.end) for w in schedule.windows),
            schedule.recipient_local_time,
            not_before,
            schedule.end_at,
            unknown,
        )

    def recipient(self, number: str, lead_timezone: str | None, region: str | None = None) -> Recipient:
        return recipient(number, lead_timezone, self.zone, region=region, unknown=self.unknown)


@lru_cache(maxsize=4096)
def _specs(times: CampaignTimes, who: Recipient) -> tuple[WeeklyWindows, ...]:
    zones = who.zones if times.recipient_local_time else (times.zone,)
    campaign = [WeeklyWindows.of(zone, times.days, times.ranges) for zone in zones]
    return tuple(campaign + legal_windows(who))


@lru_cache(maxsize=8192)
def _common_opening(specs: tuple[WeeklyWindows, ...], start: datetime) -> datetime | None:
    """The leads of one claim share `start` (now) and, per place, their specs: a number timed in the 42
    zones of NANP costs ~1.5 ms to place, then nothing for the others of its batch."""
    if len(specs) > 4:
        return common_opening(specs, start)
    return next_common_opening(specs, start)


def not_before(config: CampaignConfig, started_at: datetime | None) -> datetime | None:
    """No dial before start_at, and none before `initial_delay_seconds` after the campaign went live."""
    bounds = [b for b in (config.schedule.start_at, started_at) if b is not None]
    if not bounds:
        return None
    return max(bounds) + timedelta(seconds=config.pacing.initial_delay_seconds)


_TABLES: dict[tuple[int, int], tuple[CampaignTimes, Recipient, OpenTable]] = {}


def _table(times: CampaignTimes, who: Recipient) -> OpenTable:
    """The open-interval table of a (schedule, recipient) pair. Looked up by the identity of the two
    objects (the engine holds one CampaignTimes per campaign, and recipients are shared): hashing them
    would cost more than the lookup it saves. Where the table cannot answer as the walk would, the
    walk answers (`_common_opening`)."""
    key = (id(times), id(who))
    found = _TABLES.get(key)
    if found is None or found[0] is not times or found[1] is not who:
        if len(_TABLES) >= 4096:
            _TABLES.clear()
        specs = _specs(times, who)
        found = _TABLES[key] = (times, who, OpenTable(specs, walk=lambda t: _common_opening(specs, t)))
    return found[2]


def earliest(
    times: CampaignTimes, number: str, lead_timezone: str | None, t: datetime, region: str | None = None
) -> datetime | None:
    """The first instant >= t at which this lead may be dialed, or None if none comes within 14 days
    (or before end_at). The same answer as `next_common_opening` over the pair's specs, by table."""
    return earliest_for(times, times.recipient(number, lead_timezone, region), t)


def earliest_for(times: CampaignTimes, who: Recipient, t: datetime) -> datetime | None:
    """`earliest` for a recipient already placed (`times.recipient(...)`: the claim places each lead
    once for all its checks)."""
    start = max(t, times.not_before) if times.not_before else t
    found = _table(times, who).next_opening(start)
    if found is None or (times.end_at is not None and found >= times.end_at):
        return None
    return found


Caps = tuple[tuple[int, timedelta], ...]  # (attempts, rolling window)


def caps_for(number: str, org_cap: int | None, region: str | None = None) -> Caps:
    """The limits on attempts to this number: the organization's per rolling 24 h
    (`number_attempts_per_24h`) and its rules' caps (24 h, 30 days...); () when none limits it."""
    return rule_caps(recipient(number, None, "UTC", region=region).rule, org_cap)


_CAPS: dict[tuple[int, int | None], tuple[RegionalRule, Caps]] = {}


def rule_caps(rule: RegionalRule, org_cap: int | None) -> Caps:
    """`caps_for` by the number's rule (the rule of any `recipient` of the number: it depends on the
    number and its region only), the same tuple for every number under it. Looked up by the rule's
    identity (held here, so no other object takes it): its hash is a Python method."""
    found = _CAPS.get((id(rule), org_cap))
    if found is None or found[0] is not rule:
        caps = tuple((cap.attempts, cap.window) for cap in rule.caps)
        found = _CAPS[(id(rule), org_cap)] = (rule, ((org_cap, DAY), *caps) if org_cap is not None else caps)
    return found[1]


def longest_window(caps: Caps) -> timedelta:
    return max((window for _, window in caps), default=DAY)


def capped_until(times: list[datetime], caps: Caps, when: datetime) -> datetime:
    """The first instant >= when at which every cap holds: fewer than `attempts` attempts in the
    rolling window before it."""
    if not caps:
        return when
    ordered = sorted(times)
    for _ in range(len(ordered) * len(caps) + 1):
        moved = when
        for cap, window in caps:
            inside = [t for t in ordered if t > moved - window]
            if len(inside) >= cap:
                moved = inside[len(inside) - cap] + window
        if moved == when:
            return when
        when = moved
    return when


def refusal_pause(number: str, region: str | None = None) -> timedelta | None:
    """How long a refusal keeps this number from being called again, under its rules (France: 60 days)."""
    return recipient(number, None, "UTC", region=region).rule.refusal_pause


def _local_date(t: datetime, zone: str) -> date:
    return t.astimezone(ZoneInfo(zone)).date()


def _local(t: datetime, zone: str) -> str:
    local = t.astimezone(ZoneInfo(zone))
    return f"{local:%a %H:%M} {zone}"


def waiting_reason(
    times: CampaignTimes, number: str, lead_timezone: str | None, now: datetime, region: str | None = None
) -> str | None:
    """Why a lead cannot be dialed at `now`, in a few words, with the next opening in the zone that
    holds it back (None when nothing in the schedule or the law does: a retry interval, a cooldown or a
    per-number cap then)."""
    if times.not_before is not None and now < times.not_before:
        return (
            f"schedule: first dial at {times.not_before.astimezone(UTC):%Y-%m-%d %H:%M} UTC (start_at, initial delay)"
        )
    who = times.recipient(number, lead_timezone, region)
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
            if opening is not None and legal.closed_on is not None and legal.closed_on(_local_date(now, legal.zone)):
                when = f"a holiday there; {when}"
            return f"legal hours{rule}: {when}"
    return None
