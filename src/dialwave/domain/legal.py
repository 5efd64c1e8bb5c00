"""Where the called party is, and which calling rules apply there, independent of any campaign setting.

The rules are data (`data/calling_rules.json`, compiled by `rule_book`). Where a number is:
- the lead's own `timezone` pins the location, and its `region` (ISO 3166-2, `US-TX`) the rules (and,
  without a `timezone`, the location too: the subdivision's zones), over the area code;
- else the zones of the number: the data table's overrides (area codes that span zones), else
  phonenumbers' mapper; its US state from the area code;
- a number whose location is unknown (toll-free, premium, VoIP... or an unknown zone) is timed in every
  zone its country spans (for NANP numbers, the zones libphonenumber gives: 42 zones from Guam to
  Pago Pago), unless the campaign chose `compliance.unknown_location: "campaign_zone"`.
A number in several zones must be in legal hours in all of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from dialwave.domain.rule_book import RegionalRule, RuleBook, rule_book
from dialwave.domain.schedule import WeeklyWindows

UnknownLocation = Literal["all_zones", "campaign_zone"]
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
class Recipient:
    """What the law needs to know about a number: its rule and the zones to read it in."""

    rule: RegionalRule
    zones: tuple[str, ...]
    located: bool = True  # False: the zones are the country's (or the campaign's), the number says none

    def __hash__(self) -> int:  # computed once: part of the engine's cache keys
        found: int | None = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.rule, self.zones, self.located))
            object.__setattr__(self, "_hash", found)
        return found


@dataclass(frozen=True)
class _Facts:
    region: str | None  # ISO country of the number
    state: str | None  # US state from the area code
    zones: tuple[str, ...]  # () when the number says nothing of its place
    country_zones: tuple[str, ...]  # every zone of its country code


FACT_PREFIX = 8  # "+" and 7 digits: country code, area code and exchange decide region, type and zone
_FACTS: dict[str, _Facts] = {}


def _number_facts(e164: str, book: RuleBook) -> _Facts:
    """phonenumbers' region and type lookups cost ~200 us; the answer is shared by every number with
    the same leading digits."""
    key = e164[:FACT_PREFIX]
    facts = _FACTS.get(key)
    if facts is None:
        if len(_FACTS) >= 200_000:
            _FACTS.clear()
        facts = _FACTS[key] = _lookup_facts(e164, book)
    return facts


_TIMEZONE_DATA: dict[str, tuple[str, ...]] = pn_timezone.TIMEZONE_DATA  # type: ignore[attr-defined]  # prefix -> zones


def _country_zones(country_code: int | None) -> tuple[str, ...]:
    if country_code is None:
        return ()
    zones = _TIMEZONE_DATA.get(str(country_code), ())
    return tuple(z for z in zones if z != "Etc/Unknown")


def _lookup_facts(e164: str, book: RuleBook) -> _Facts:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return _Facts(None, None, (), ())
    region = phonenumbers.region_code_for_number(number)
    country = _country_zones(number.country_code)
    state = None
    if number.country_code == 1:
        state = book.state_by_area_code.get(str(number.national_number)[:3])
    for size in (5, 4, 3):
        override = book.zone_overrides.get(e164[:size])
        if override:
            return _Facts(region, state, override, country)
    if phonenumbers.number_type(number) in _NON_GEOGRAPHIC:
        return _Facts(region, state, (), country)
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return _Facts(region, state, zones, country)


def region_zones(region: str, book: RuleBook | None = None) -> tuple[str, ...]:
    """The zones of an ISO 3166-2 region (`US-TX`): the data table's, else every zone of its country."""
    book = book or rule_book()
    listed = book.region_zones.get(region)
    if listed:
        return listed
    country = region.partition("-")[0]
    code = phonenumbers.country_code_for_region(country)
    return _country_zones(code) if code else ()


_RECIPIENTS: dict[tuple[str, str | None, str | None, str, str], Recipient] = {}


def recipient(
    e164: str,
    lead_timezone: str | None,
    campaign_zone: str,
    book: RuleBook | None = None,
    *,
    region: str | None = None,
    unknown: UnknownLocation = "all_zones",
) -> Recipient:
    if book is not None:
        return _recipient(e164, lead_timezone, region, campaign_zone, unknown, book)
    key = (e164[:FACT_PREFIX], lead_timezone, region, campaign_zone, unknown)
    found = _RECIPIENTS.get(key)
    if found is None:
        if len(_RECIPIENTS) >= 200_000:
            _RECIPIENTS.clear()
        found = _RECIPIENTS[key] = _recipient(e164, lead_timezone, region, campaign_zone, unknown, rule_book())
    return found


def _recipient(
    e164: str,
    lead_timezone: str | None,
    region: str | None,
    campaign_zone: str,
    unknown: UnknownLocation,
    book: RuleBook,
) -> Recipient:
    facts = _number_facts(e164, book)
    if region:
        country, _, subdivision = region.partition("-")
        rule = book.rule_for(country, subdivision or None)
    else:
        rule = book.rule_for(facts.region, facts.state)
    if lead_timezone:
        return Recipient(rule, (lead_timezone,))
    if region:
        zones = region_zones(region, book)
        if zones:
            return Recipient(rule, zones)
    if facts.zones:
        return Recipient(rule, facts.zones)
    if unknown == "all_zones" and facts.country_zones:
        return Recipient(rule, facts.country_zones, located=False)
    return Recipient(rule, (campaign_zone,), located=False)


def legal_windows(who: Recipient) -> list[WeeklyWindows]:
    """One spec per zone; an attempt is legal when all of them are open."""
    return [who.rule.windows(zone) for zone in who.zones]


_REGION_FORM = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


def region_problem(region: str) -> str | None:
    """Why `region` is not an ISO 3166-2 subdivision we know (None when it is). A US subdivision must be
    a state, DC or a territory; elsewhere the country must be known and the code well formed."""
    if not _REGION_FORM.match(region):
        return f"'{region[:16]}' is not an ISO 3166-2 subdivision such as US-TX"
    country = region[:2]
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return f"unknown country '{country}' in '{region}'"
    if country == "US" and region not in rule_book().region_zones:
        return f"unknown US subdivision '{region}'"
    return None


def checked_region(value: str | None) -> str | None:
    """An ISO 3166-2 subdivision, upper-cased; ValueError (a 422 naming the field in the API) otherwise."""
    if value is None:
        return None
    region = value.strip().upper()
    problem = region_problem(region)
    if problem is not None:
        raise ValueError(problem)
    return region
