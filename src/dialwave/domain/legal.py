"""Legal calling hours in the recipient's local time, independent of any campaign setting.

The rules are data (`data/calling_rules.json`): a default of 08:00-21:00, per-country and per-US-state
rules (found by area code) with stricter hours, closed weekdays and rolling 24 h attempt caps.
A number's zones come from the lead's own `timezone`, else from the data table's overrides (area codes
that span zones), else from phonenumbers' mapper; non-geographic numbers (toll-free, premium, VoIP...)
and unknown zones fall back to the campaign's zone. A number in several zones must be in legal hours
in all of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from dialwave.domain.schedule import WeeklyWindows

ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)
_NON_GEOGRAPHIC = {
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
    PhoneNumberType.UNKNOWN,
}


@dataclass(frozen=True)
class RegionalRule:
    key: str  # "default", "US", "US-FL"
    hours: tuple[tuple[str, str], ...]
    days: tuple[int, ...]
    max_attempts_per_24h: int | None

    def windows(self, zone: str) -> WeeklyWindows:
        return WeeklyWindows.of(zone, self.days, self.hours)


def _rule(key: str, raw: dict[str, Any]) -> RegionalRule:
    return RegionalRule(
        key,
        tuple((a, b) for a, b in raw["hours"]),
        tuple(raw.get("days", ALL_DAYS)),
        raw.get("max_attempts_per_24h"),
    )


@dataclass(frozen=True)
class RuleBook:
    default: RegionalRule
    rules: dict[str, RegionalRule]
    state_by_area_code: dict[str, str]
    zone_overrides: dict[str, tuple[str, ...]]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RuleBook:
        states = {code: state for state, codes in raw.get("us_area_codes", {}).items() for code in codes}
        return cls(
            _rule("default", raw["default"]),
            {key: _rule(key, value) for key, value in raw.get("rules", {}).items()},
            states,
            {prefix: tuple(zones) for prefix, zones in raw.get("zone_overrides", {}).items()},
        )


@lru_cache(maxsize=1)
def rule_book() -> RuleBook:
    text = resources.files("dialwave.domain").joinpath("data/calling_rules.json").read_text("utf-8")
    return RuleBook.from_json(json.loads(text))


@dataclass(frozen=True)
class Recipient:
    """What the law needs to know about a number: its rule and the zones to read it in."""

    rule: RegionalRule
    zones: tuple[str, ...]


FACT_PREFIX = 8  # "+" and 7 digits: country code, area code and exchange decide region, type and zone


def _number_facts(e164: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(region, US state, zones from the number or ()) for an E.164 number. phonenumbers' region and
    type lookups cost ~200 us; the answer is shared by every number with the same leading digits."""
    key = e164[:FACT_PREFIX]
    facts = _FACTS.get(key)
    if facts is None:
        if len(_FACTS) >= 200_000:
            _FACTS.clear()
        facts = _FACTS[key] = _lookup_facts(e164)
    return facts


_FACTS: dict[str, tuple[str | None, str | None, tuple[str, ...]]] = {}


def _lookup_facts(e164: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None, None, ()
    region = phonenumbers.region_code_for_number(number)
    state = None
    if number.country_code == 1:
        state = rule_book().state_by_area_code.get(str(number.national_number)[:3])
    book = rule_book()
    for size in (5, 4, 3):
        override = book.zone_overrides.get(e164[:size])
        if override:
            return region, state, override
    if phonenumbers.number_type(number) in _NON_GEOGRAPHIC:
        return region, state, ()
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return region, state, zones


_RECIPIENTS: dict[tuple[str, str | None, str], Recipient] = {}


def recipient(e164: str, lead_timezone: str | None, campaign_zone: str, book: RuleBook | None = None) -> Recipient:
    if book is not None:
        return _recipient(e164, lead_timezone, campaign_zone, book)
    key = (e164[:FACT_PREFIX], lead_timezone, campaign_zone)
    found = _RECIPIENTS.get(key)
    if found is None:
        if len(_RECIPIENTS) >= 200_000:
            _RECIPIENTS.clear()
        found = _RECIPIENTS[key] = _recipient(e164, lead_timezone, campaign_zone, rule_book())
    return found


def _recipient(e164: str, lead_timezone: str | None, campaign_zone: str, book: RuleBook) -> Recipient:
    region, state, zones = _number_facts(e164)
    rule = book.default
    if region and state and f"{region}-{state}" in book.rules:
        rule = book.rules[f"{region}-{state}"]
    elif region and region in book.rules:
        rule = book.rules[region]
    if lead_timezone:
        zones = (lead_timezone,)
    return Recipient(rule, zones or (campaign_zone,))


def legal_windows(who: Recipient) -> list[WeeklyWindows]:
    """One spec per zone; an attempt is legal when all of them are open."""
    return [who.rule.windows(zone) for zone in who.zones]
