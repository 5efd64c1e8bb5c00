"""Each rule of the data table (`domain/data/calling_rules.json`) at its edges: hours by weekday (Texas),
holidays (Louisiana, Rhode Island, France), rolling caps (Florida 3 per 24 h, France 4 per 30 days),
the pause after a refusal (France, 60 days), unknown locations timed in every zone of the country,
and a lead's `region` over its area code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone

from dialwave.domain.campaign_dialing import Schedule
from dialwave.domain.dialable import (
    CampaignTimes,
    capped_until,
    caps_for,
    earliest,
    refusal_pause,
    rule_caps,
    waiting_reason,
)
from dialwave.domain.legal import recipient, region_problem
from dialwave.domain.rule_book import RuleBook, rule_book

ALL_DAY = {"windows": [{"start": "00:00", "end": "24:00"}]}


def times(zone: str = "UTC", unknown: str = "all_zones") -> CampaignTimes:
    return CampaignTimes.of(Schedule.model_validate({"timezone": zone, **ALL_DAY}), None, unknown)  # type: ignore[arg-type]


def dialable(number: str, at: datetime, *, zone: str = "UTC", region: str | None = None, **kw: str) -> bool:
    return earliest(times(zone, **kw), number, None, at, region) == at


def at_local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def test_every_rule_has_an_id_a_region_one_kind_and_a_source() -> None:
    raw = json.loads(resources.files("dialwave.domain").joinpath("data/calling_rules.json").read_text("utf-8"))
    ids = [rule["id"] for rule in raw["rules"]]
    assert len(ids) == len(set(ids))
    for rule in raw["rules"]:
        assert rule["source"] and rule["region"]
    RuleBook.from_json(raw)  # refuses a rule without an id, a source or exactly one kind
    with pytest.raises(ValueError):
        RuleBook.from_json({"rules": [{"id": "x", "region": "US", "hours": [["08:00", "21:00"]]}]})


# -- item 1: a number whose location is unknown ----------------------------------------------------------
def test_toll_free_number_at_0807_new_york_is_not_dialed_it_waits_for_every_us_zone() -> None:
    number = "+18885550100"
    monday_0807 = at_local("America/New_York", 2026, 3, 2, 8, 7)  # 03:07 in Adak, 03:07 in Honolulu
    assert not dialable(number, monday_0807)
    zones = pn_timezone.time_zones_for_number(phonenumbers.parse(number))
    assert len(zones) == 42 and "Pacific/Guam" in zones and "Pacific/Pago_Pago" in zones
    assert set(recipient(number, None, "UTC").zones) == set(zones)
    first = earliest(times(), number, None, monday_0807)
    assert first is not None
    for zone in zones:  # legal (08:00-21:00, the US rule) in every one of them at once
        local = first.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < 21, (zone, local)
    # the first such minute: 08:00 in Guam (UTC+10) is 17:00 in New York, 12:00 in Pago Pago
    assert first == at_local("America/New_York", 2026, 3, 2, 17, 0)
    assert not dialable(number, first - timedelta(minutes=1))
    why = waiting_reason(times(), number, None, monday_0807)
    assert why is not None and why.startswith("legal hours (US)")


def test_a_campaign_may_time_unknown_locations_in_its_own_zone_and_a_lead_can_pin_them() -> None:
    monday_0807 = at_local("America/New_York", 2026, 3, 2, 8, 7)
    assert dialable("+18885550100", monday_0807, zone="America/New_York", unknown="campaign_zone")
    assert earliest(times(), "+18885550100", "America/New_York", monday_0807) == monday_0807  # its timezone
    assert dialable("+18885550100", monday_0807, region="US-NY")  # its region's zones
    assert not dialable("+18885550100", monday_0807, region="US-TX")  # 07:07 in Chicago


# -- hours by weekday -----------------------------------------------------------------------------------
def test_texas_sunday_opens_at_noon_other_days_at_nine() -> None:
    dallas = "+12145550100"
    assert recipient(dallas, None, "UTC").rule.key == "US-TX"
    assert not dialable(dallas, at_local("America/Chicago", 2026, 3, 1, 11, 59))  # Sunday
    assert dialable(dallas, at_local("America/Chicago", 2026, 3, 1, 12, 0))
    assert not dialable(dallas, at_local("America/Chicago", 2026, 3, 7, 8, 59))  # Saturday
    assert dialable(dallas, at_local("America/Chicago", 2026, 3, 7, 9, 0))
    assert dialable(dallas, at_local("America/Chicago", 2026, 3, 7, 20, 59))
    assert not dialable(dallas, at_local("America/Chicago", 2026, 3, 7, 21, 0))


def test_a_leads_region_pins_its_rules_over_the_area_code() -> None:
    new_york = "+12125550100"
    sunday_1130_chicago = at_local("America/Chicago", 2026, 3, 1, 11, 30)
    assert dialable(new_york, sunday_1130_chicago)  # 12:30 in New York, US rule
    assert not dialable(new_york, sunday_1130_chicago, region="US-TX")  # Texas: not before noon
    texan = recipient(new_york, None, "UTC", region="US-TX")
    assert texan.rule.key == "US-TX" and set(texan.zones) == {"America/Chicago", "America/Denver"}
    assert recipient(new_york, "America/Chicago", "UTC", region="US-TX").zones == ("America/Chicago",)
    assert caps_for("+12125550100", None, "US-FL") == ((3, timedelta(hours=24)),)


def test_region_is_an_iso_3166_2_subdivision() -> None:
    assert region_problem("US-TX") is None and region_problem("FR-75") is None
    assert region_problem("US-XX") is not None
    assert region_problem("Texas") is not None
    assert region_problem("ZZ-AB") is not None


# -- holidays ---------------------------------------------------------------------------------------------
def test_louisiana_no_calls_on_mardi_gras_a_state_holiday() -> None:
    new_orleans = "+15045550100"
    assert recipient(new_orleans, None, "UTC").rule.key == "US-LA"
    assert not dialable(new_orleans, at_local("America/Chicago", 2026, 2, 17, 10, 0))  # Mardi Gras 2026
    assert not dialable(new_orleans, at_local("America/Chicago", 2026, 2, 16, 12, 0))  # Washington's Birthday
    assert dialable(new_orleans, at_local("America/Chicago", 2026, 2, 13, 19, 59))  # the Friday before
    assert not dialable(new_orleans, at_local("America/Chicago", 2026, 2, 13, 20, 0))
    assert earliest(times(), new_orleans, None, at_local("America/Chicago", 2026, 2, 17, 10, 0)) == at_local(
        "America/Chicago", 2026, 2, 18, 8, 0
    )
    assert not dialable(new_orleans, at_local("America/Chicago", 2026, 2, 22, 12, 0))  # a Sunday
    why = waiting_reason(times(), new_orleans, None, at_local("America/Chicago", 2026, 2, 17, 10, 0))
    assert why is not None and "holiday" in why


def test_rhode_island_no_sales_calls_on_victory_day_nor_on_sundays() -> None:
    providence = "+14015550100"
    assert not dialable(providence, at_local("America/New_York", 2026, 8, 10, 12, 0))  # Victory Day
    assert dialable(providence, at_local("America/New_York", 2026, 8, 11, 12, 0))
    assert not dialable(providence, at_local("America/New_York", 2026, 8, 11, 18, 0))  # 09:00-18:00
    assert dialable(providence, at_local("America/New_York", 2026, 8, 15, 16, 59))  # Saturday 10:00-17:00
    assert not dialable(providence, at_local("America/New_York", 2026, 8, 16, 12, 0))  # Sunday


def test_france_weekdays_10_13_and_14_20_not_on_public_holidays() -> None:
    paris = "+33612345678"
    assert dialable(paris, at_local("Europe/Paris", 2026, 7, 13, 12, 59))
    assert not dialable(paris, at_local("Europe/Paris", 2026, 7, 13, 13, 0))
    assert not dialable(paris, at_local("Europe/Paris", 2026, 7, 14, 11, 0))  # Bastille Day, a Tuesday
    assert not dialable(paris, at_local("Europe/Paris", 2026, 7, 18, 11, 0))  # Saturday


# -- rolling caps and the pause after a refusal -----------------------------------------------------------------
def test_florida_fourth_attempt_in_24_hours_is_refused() -> None:
    caps = caps_for("+13055550100", None)
    assert caps == ((3, timedelta(hours=24)),)
    t0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    three = [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=2)]
    assert capped_until(three[:2], caps, t0 + timedelta(hours=3)) == t0 + timedelta(hours=3)
    assert capped_until(three, caps, t0 + timedelta(hours=3)) == t0 + timedelta(hours=24)
    assert caps_for("+13055550100", 2) == ((2, timedelta(hours=24)), (3, timedelta(hours=24)))


def test_france_fifth_attempt_in_30_days_is_refused() -> None:
    caps = caps_for("+33612345678", None)
    assert caps == ((4, timedelta(days=30)),)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    four = [t0 + timedelta(days=7 * i) for i in range(4)]
    fifth = t0 + timedelta(days=28)
    assert capped_until(four[:3], caps, fifth) == fifth
    assert capped_until(four, caps, fifth) == t0 + timedelta(days=30)
    assert capped_until(four, caps, t0 + timedelta(days=30)) == t0 + timedelta(days=30)


def test_several_caps_hold_at_once() -> None:
    caps = ((2, timedelta(hours=24)), (3, timedelta(days=7)))
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    done = [t0, t0 + timedelta(hours=1), t0 + timedelta(days=2)]
    # the 24 h cap allows it on day 2 + 1 h, the 7-day cap only 7 days after the first
    assert capped_until(done, caps, t0 + timedelta(days=2, hours=1)) == t0 + timedelta(days=7)


def test_a_refusal_pauses_a_french_number_60_days_and_no_other() -> None:
    assert refusal_pause("+33612345678") == timedelta(days=60)
    assert refusal_pause("+12125550100") is None
    assert rule_book().longest_pause == timedelta(days=60)
    assert recipient("+33612345678", None, "UTC").rule.pause_rule_id == "FR.refusal-pause"


@pytest.mark.parametrize(
    ("number", "lead_timezone", "region"),
    [
        ("+13055550100", None, None),  # Florida by its area code
        ("+12125550100", "America/Chicago", "US-FL"),  # a region over the area code, a zone of its own
        ("+33612345678", None, None),  # France: a cap and a refusal pause
        ("+33612345678", "Europe/Paris", None),
        ("+442071838750", None, None),  # no rule of its own: the default
    ],
)
def test_a_placed_recipients_rule_gives_the_numbers_caps_and_pause(
    number: str, lead_timezone: str | None, region: str | None
) -> None:
    """The dial-time check (engine/dial.recheck) places the lead once, in its campaign's zone and with
    its timezone, and reads the caps and refusal pause from that rule: the same as caps_for and
    refusal_pause, which place the number alone."""
    for zone, unknown in (("UTC", "all_zones"), ("America/New_York", "campaign_zone")):
        rule = times(zone, unknown=unknown).recipient(number, lead_timezone, region).rule
        for org_cap in (None, 2):
            assert rule_caps(rule, org_cap) == caps_for(number, org_cap, region)
        assert rule.refusal_pause == refusal_pause(number, region)


# -- every rule of the table at its edges, driven by the table itself -------------------------------------
TABLE = json.loads(resources.files("dialwave.domain").joinpath("data/calling_rules.json").read_text("utf-8"))
SAMPLES = {  # a number of each country with rules (and one without: the default)
    "US": "+12125550100",
    "CA": "+14165550100",
    "FR": "+33612345678",
    "IN": "+919876543210",
    "GB": "+442071234567",
    "default": "+4930123456",
}
QUIET_WEEK = datetime(2026, 3, 9)  # Monday; no holiday of any region in the table that week


def _where(region: str) -> tuple[str, str | None, str]:
    """(number, lead region, zone) to test a region's rules in one zone."""
    if region in SAMPLES:
        number = SAMPLES[region]
        return number, None, recipient(number, None, "UTC").zones[0]
    return SAMPLES["US"], region, TABLE["region_zones"][region][0]


def _ranges(rule: dict[str, object], weekday: int) -> list[tuple[int, int]]:
    parts = rule["week"] if "week" in rule else [{"days": rule.get("days", range(1, 8)), "hours": rule["hours"]}]
    for part in parts:  # type: ignore[attr-defined]
        if weekday in part["days"]:
            return [(int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])) for a, b in part["hours"]]
    return []


@pytest.mark.parametrize("rule", [r for r in TABLE["rules"] if "hours" in r or "week" in r], ids=lambda r: r["id"])
def test_each_hours_rule_opens_and_closes_at_its_edges(rule: dict[str, object]) -> None:
    number, region, zone = _where(str(rule["region"]))
    for offset in range(7):
        day = QUIET_WEEK + timedelta(days=offset)
        ranges = _ranges(rule, day.isoweekday())

        def at(minute: int, day: datetime = day) -> datetime:
            return (day + timedelta(minutes=minute)).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)

        def legal(minute: int) -> bool:
            return earliest(times(), number, zone, at(minute), region) == at(minute)

        if not ranges:
            assert not legal(12 * 60), (rule["id"], day)
        for start, end in ranges:
            assert legal(start) and legal(end - 1), (rule["id"], day, start, end)
            assert not legal(end), (rule["id"], day, end)
            if all(b != start for _, b in ranges):
                assert not legal(start - 1), (rule["id"], day, start)


@pytest.mark.parametrize("rule", [r for r in TABLE["rules"] if r.get("holidays")], ids=lambda r: r["id"])
def test_each_holidays_rule_closes_its_holidays_only(rule: dict[str, str]) -> None:
    import holidays

    number, region, zone = _where(rule["region"])
    country, _, sub = rule["region"].partition("-")
    hours = next(r for r in TABLE["rules"] if r["region"] == rule["region"] and ("hours" in r or "week" in r))
    days = sorted(holidays.country_holidays(country, subdiv=sub or None, years=2026))
    open_holidays = [d for d in days if _ranges(hours, d.isoweekday())]
    assert open_holidays, rule["id"]
    for holiday in open_holidays:
        start, _ = _ranges(hours, holiday.isoweekday())[0]
        at = datetime.combine(holiday, datetime.min.time(), ZoneInfo(zone)) + timedelta(minutes=start)
        assert earliest(times(), number, zone, at.astimezone(UTC), region) != at.astimezone(UTC), (rule["id"], holiday)
    week_later = datetime.combine(open_holidays[0] + timedelta(days=7), datetime.min.time(), ZoneInfo(zone))
    if week_later.date() not in days:
        start, _ = _ranges(hours, week_later.isoweekday())[0]
        at = (week_later + timedelta(minutes=start)).astimezone(UTC)
        assert earliest(times(), number, zone, at, region) == at, rule["id"]


@pytest.mark.parametrize("rule", [r for r in TABLE["rules"] if "cap" in r], ids=lambda r: r["id"])
def test_each_cap_refuses_the_attempt_over_it_until_the_window_has_passed(rule: dict[str, object]) -> None:
    number, region, _ = _where(str(rule["region"]))
    cap = rule["cap"]
    attempts, window = int(cap["attempts"]), timedelta(hours=cap["hours"])  # type: ignore[index]
    caps = caps_for(number, None, region)
    assert (attempts, window) in caps
    t0 = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    done = [t0 + timedelta(minutes=i) for i in range(attempts)]
    after = done[-1] + timedelta(minutes=1)
    assert capped_until(done[:-1], caps, after) == after  # the last allowed one
    assert capped_until(done, caps, after) == t0 + window  # the one over it waits for the window


@pytest.mark.parametrize("rule", [r for r in TABLE["rules"] if "refusal_pause_days" in r], ids=lambda r: r["id"])
def test_each_refusal_pause_lasts_its_days(rule: dict[str, object]) -> None:
    number, region, _ = _where(str(rule["region"]))
    assert refusal_pause(number, region) == timedelta(days=int(rule["refusal_pause_days"]))  # type: ignore[call-overload]
