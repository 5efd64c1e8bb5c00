"""The calling rules of `data/calling_rules.json`, compiled per region: the hours by weekday, the
holidays that close whole days, the rolling attempt caps and the pause after a refusal, each with the
rule ids it came from. A recipient is under its country's rules and its subdivision's ("US" and
"US-TX"): hours intersect, caps, holidays and pauses add up. Pure (the holidays package computes dates)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import holidays as holiday_tables

from dialwave.domain.schedule import Ranges, WeeklyWindows, minutes

ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)
KINDS = ("hours", "week", "holidays", "cap", "refusal_pause_days")


@dataclass(frozen=True)
class Cap:
    rule_id: str
    attempts: int
    window: timedelta


@dataclass(frozen=True)
class Holidays:
    """Public holidays of a country (and subdivision), by local date; a hashable callable for
    `WeeklyWindows.closed_on`."""

    country: str
    subdivision: str | None

    def __call__(self, day: date) -> bool:
        return day in _holiday_dates(self.country, self.subdivision, day.year)


@lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holiday_tables.country_holidays(country, subdiv=subdivision, years=year).keys())


@dataclass(frozen=True)
class ClosedOn:
    """Several holiday calendars: closed when any of them has a holiday."""

    calendars: tuple[Holidays, ...]

    def __call__(self, day: date) -> bool:
        return any(calendar(day) for calendar in self.calendars)


@dataclass(frozen=True)
class RegionalRule:
    """The rules in force for one region, compiled."""

    key: str  # the most specific region with rules of its own: "default", "US", "US-TX"
    week: tuple[Ranges, ...]  # ranges (minutes) per ISO weekday, index 0 = Monday; () = closed that day
    holidays: tuple[Holidays, ...] = ()
    caps: tuple[Cap, ...] = ()
    refusal_pause: timedelta | None = None
    rule_ids: tuple[str, ...] = ()
    pause_rule_id: str | None = None

    def __hash__(self) -> int:  # computed once: part of the engine's cache keys
        found: int | None = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.key, self.week, self.holidays, self.caps, self.refusal_pause, self.rule_ids))
            object.__setattr__(self, "_hash", found)
        return found

    @property
    def days(self) -> tuple[int, ...]:
        return tuple(day for day in ALL_DAYS if self.week[day - 1])

    @property
    def max_attempts_per_24h(self) -> int | None:
        caps = [c.attempts for c in self.caps if c.window == timedelta(hours=24)]
        return min(caps) if caps else None

    def windows(self, zone: str) -> WeeklyWindows:
        return _windows(self, zone)


@lru_cache(maxsize=4096)
def _windows(rule: RegionalRule, zone: str) -> WeeklyWindows:
    by_day = tuple((day, rule.week[day - 1]) for day in ALL_DAYS)
    closed = ClosedOn(rule.holidays) if rule.holidays else None
    return WeeklyWindows(zone, frozenset(rule.days), (), by_day, closed)


# -- compiling the table ---------------------------------------------------------------------------------
def _ranges(raw: list[list[str]]) -> Ranges:
    out = tuple((minutes(a), minutes(b)) for a, b in raw)
    for start, end in out:
        if not 0 <= start < end <= 1440:
            raise ValueError(f"legal hours must not cross midnight: {raw}")
    return out


def _week(raw: dict[str, Any]) -> tuple[Ranges, ...]:
    """One hours rule as ranges per weekday."""
    if "week" in raw:
        week: list[Ranges] = [()] * 7
        for part in raw["week"]:
            for day in part["days"]:
                week[day - 1] = _ranges(part["hours"])
        return tuple(week)
    days = raw.get("days", ALL_DAYS)
    ranges = _ranges(raw["hours"])
    return tuple(ranges if day in days else () for day in ALL_DAYS)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if lo < hi:
                out.append((lo, hi))
    return tuple(sorted(out))


@dataclass
class _Parts:
    weeks: list[tuple[Ranges, ...]] = field(default_factory=list)
    holidays: list[Holidays] = field(default_factory=list)
    caps: list[Cap] = field(default_factory=list)
    pause: timedelta | None = None
    pause_id: str | None = None
    ids: list[str] = field(default_factory=list)


def _kind(raw: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1 or "id" not in raw or "region" not in raw or not raw.get("source"):
        raise ValueError(f"a rule needs an id, a region, a source and one kind of {KINDS}: {raw}")
    return kinds[0]


def _add(parts: _Parts, raw: dict[str, Any]) -> None:
    kind = _kind(raw)
    parts.ids.append(raw["id"])
    if kind in ("hours", "week"):
        parts.weeks.append(_week(raw))
    elif kind == "holidays":
        country, _, subdivision = raw["region"].partition("-")
        parts.holidays.append(Holidays(country, subdivision or None))
    elif kind == "cap":
        cap = raw["cap"]
        parts.caps.append(Cap(raw["id"], int(cap["attempts"]), timedelta(hours=cap["hours"])))
    else:
        pause = timedelta(days=raw["refusal_pause_days"])
        if parts.pause is None or pause > parts.pause:
            parts.pause, parts.pause_id = pause, raw["id"]


@dataclass(frozen=True)
class RuleBook:
    default: RegionalRule
    by_region: dict[str, list[dict[str, Any]]]  # the raw rules of each region
    state_by_area_code: dict[str, str]
    zone_overrides: dict[str, tuple[str, ...]]
    region_zones: dict[str, tuple[str, ...]]
    longest_pause: timedelta | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RuleBook:
        by_region: dict[str, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        for rule in raw["rules"]:
            _kind(rule)
            if rule["id"] in seen:
                raise ValueError(f"duplicate rule id {rule['id']}")
            seen.add(rule["id"])
            by_region.setdefault(rule["region"], []).append(rule)
        default = _compile("default", [], by_region.get("default", []))
        pauses = [timedelta(days=r["refusal_pause_days"]) for r in raw["rules"] if "refusal_pause_days" in r]
        return cls(
            default,
            by_region,
            {code: state for state, codes in raw.get("us_area_codes", {}).items() for code in codes},
            {prefix: tuple(zones) for prefix, zones in raw.get("zone_overrides", {}).items()},
            {region: tuple(zones) for region, zones in raw.get("region_zones", {}).items()},
            max(pauses) if pauses else None,
        )

    def rule_for(self, country: str | None, subdivision: str | None) -> RegionalRule:
        """The compiled rule of a country and subdivision ("US", "TX"), or the default."""
        return _rule_for(self, country, subdivision)

    def __hash__(self) -> int:
        return id(self)


@lru_cache(maxsize=1024)
def _rule_for(book: RuleBook, country: str | None, subdivision: str | None) -> RegionalRule:
    chain = []
    if country:
        chain.append(country)
        if subdivision:
            chain.append(f"{country}-{subdivision}")
    raws = [rule for region in chain for rule in book.by_region.get(region, [])]
    if not raws:
        return book.default
    key = next(region for region in reversed(chain) if region in book.by_region)
    return _compile(key, [book.default], raws)


def _compile(key: str, fallback: list[RegionalRule], raws: list[dict[str, Any]]) -> RegionalRule:
    parts = _Parts()
    for raw in raws:
        _add(parts, raw)
    if parts.weeks:
        week = parts.weeks[0]
        for other in parts.weeks[1:]:
            week = tuple(_intersect(a, b) for a, b in zip(week, other, strict=True))
    elif fallback:
        week = fallback[0].week
        parts.ids = [*fallback[0].rule_ids, *parts.ids]
    else:
        raise ValueError("the default rule needs hours")
    return RegionalRule(
        key, week, tuple(parts.holidays), tuple(parts.caps), parts.pause, tuple(parts.ids), parts.pause_id
    )


@lru_cache(maxsize=1)
def rule_book() -> RuleBook:
    text = resources.files("dialwave.domain").joinpath("data/calling_rules.json").read_text("utf-8")
    return RuleBook.from_json(json.loads(text))
