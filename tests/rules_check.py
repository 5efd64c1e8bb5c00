"""An independent reading of the calling-rules data table (`domain/data/calling_rules.json`) for the
engine's property test: given what was dialed, does any dial break a rule of the table? It reads the
JSON itself, the `holidays` package and phonenumbers, not the engine's compiled rule book; only the
zones of a number with a known place come from `recipient` (tested on their own in tests/unit)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from dialwave.domain.legal import recipient


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    text = resources.files("dialwave.domain").joinpath("data/calling_rules.json").read_text("utf-8")
    return dict(json.loads(text))


def chain(number: str, region: str | None) -> list[str]:
    """The regions whose rules apply: the lead's region, else the number's country and US state."""
    if region:
        country, _, sub = region.partition("-")
    else:
        parsed = phonenumbers.parse(number)
        country = phonenumbers.region_code_for_number(parsed) or ""
        code = str(parsed.national_number)[:3]
        states = table()["us_area_codes"]
        sub = next((s for s, codes in states.items() if code in codes), "") if parsed.country_code == 1 else ""
    return [country] + ([f"{country}-{sub}"] if sub else [])


def rules_of(number: str, region: str | None) -> list[dict[str, Any]]:
    regions = chain(number, region)
    return [r for r in table()["rules"] if r["region"] in regions]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _open_in(rule: dict[str, Any], weekday: int, minute: int) -> bool:
    parts = rule["week"] if "week" in rule else [{"days": rule.get("days", range(1, 8)), "hours": rule["hours"]}]
    for part in parts:
        if weekday in part["days"]:
            return any(_minutes(a) <= minute < _minutes(b) for a, b in part["hours"])
    return False


def zones_to_check(
    number: str, lead_zone: str | None, region: str | None, campaign_zone: str, unknown: str
) -> tuple[str, ...]:
    """Where the law reads the dial: for a number that says nothing of its place (toll-free...) and a
    lead without timezone or region, every zone phonenumbers gives (all_zones) or the campaign's."""
    parsed = phonenumbers.parse(number)
    if not lead_zone and not region and phonenumbers.number_type(parsed) == PhoneNumberType.TOLL_FREE:
        if unknown == "all_zones":
            return tuple(pn_timezone.time_zones_for_number(parsed))
        return (campaign_zone,)
    return recipient(number, lead_zone, campaign_zone, region=region, unknown=unknown).zones  # type: ignore[arg-type]


def hours_violation(number: str, region: str | None, zones: Iterable[str], at: datetime) -> str | None:
    """Hours by weekday and holidays of the table, in every zone."""
    rules = rules_of(number, region)
    hours = [r for r in rules if "hours" in r or "week" in r]
    if not hours:
        hours = [r for r in table()["rules"] if r["region"] == "default"]
    closed = [r for r in rules if r.get("holidays")]
    for zone in zones:
        local = at.astimezone(ZoneInfo(zone))
        minute = local.hour * 60 + local.minute
        for rule in hours:
            if not _open_in(rule, local.isoweekday(), minute):
                return f"{rule['id']}: {number} dialed at {local:%a %Y-%m-%d %H:%M} {zone}"
        for rule in closed:
            country, _, sub = rule["region"].partition("-")
            if local.date() in holidays.country_holidays(country, subdiv=sub or None, years=local.year):
                return f"{rule['id']}: {number} dialed on a holiday, {local:%Y-%m-%d} {zone}"
    return None


def cap_violation(number: str, region: str | None, starts: list[datetime]) -> str | None:
    """Every rolling cap of the table: no window of its length holds more attempts than allowed."""
    starts = sorted(starts)
    for rule in rules_of(number, region):
        if "cap" not in rule:
            continue
        window, allowed = timedelta(hours=rule["cap"]["hours"]), rule["cap"]["attempts"]
        for i, t in enumerate(starts):
            inside = [s for s in starts[: i + 1] if s > t - window]
            if len(inside) > allowed:
                return f"{rule['id']}: {len(inside)} attempts to {number} in {window} up to {t}"
    return None


def pause_violation(number: str, region: str | None, calls: list[dict[str, Any]]) -> str | None:
    """After a refusal (an answered call whose conversion is false), no attempt within the pause."""
    for rule in rules_of(number, region):
        if "refusal_pause_days" not in rule:
            continue
        pause = timedelta(days=rule["refusal_pause_days"])
        refusals = [c["ended_at"] for c in calls if c["conversion"] is False and c["ended_at"] is not None]
        for refused in refusals:
            for c in calls:
                if c["started_at"] is not None and refused <= c["started_at"] < refused + pause:
                    return f"{rule['id']}: {number} refused at {refused}, dialed again at {c['started_at']}"
    return None
