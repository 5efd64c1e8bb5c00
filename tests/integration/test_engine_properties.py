"""The engine's guarantees as properties (numbered as in docs/engine.md): 1 concurrency caps, 2 pace,
3 windows with start_at / end_at, 4 legal hours in every zone of the recipient, 5 do-not-call, 6 each
attempt dialed once, 7 retries exactly as configured, 8 nothing starts while paused, 10 completion and
counters, 11 no dial breaks a rule of the calling-rules data table (hours by weekday, holidays, rolling
caps, the pause after a refusal, unknown locations in every zone), read on its own by tests/rules_check.py.
Random campaigns (windows, zones, DST dates, holidays, regions, outcome
mixes, retry policies, pauses, edits and DNC additions mid-run) are driven through the real engine on
a virtual clock with the simulated carrier, then every guarantee is checked on what was recorded.
Runs on SQLite and PostgreSQL. DIALWAVE_PROPERTY_EXAMPLES sets the examples per backend (default 25)."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.legal import legal_windows, recipient
from dialwave.domain.outcomes import OPTED_OUT
from dialwave.domain.phone import normalize
from dialwave.domain.schedule import WeeklyWindows, is_open
from dialwave.errors import InvalidPhoneNumber
from dialwave.store.db import Database
from tests.rig import Rig, config_of, make_rig, model
from tests.rules_check import cap_violation, hours_violation, pause_violation, zones_to_check

EXAMPLES = int(os.environ.get("DIALWAVE_PROPERTY_EXAMPLES", "25"))
DATES = [
    datetime(2026, 3, 7, tzinfo=UTC),  # US spring forward weekend
    datetime(2026, 3, 28, tzinfo=UTC),  # Europe spring forward weekend
    datetime(2026, 10, 24, tzinfo=UTC),  # Europe fall back weekend
    datetime(2026, 10, 31, tzinfo=UTC),  # US fall back weekend
    datetime(2026, 6, 15, tzinfo=UTC),
    datetime(2026, 3, 2, tzinfo=UTC),
    datetime(2026, 2, 14, tzinfo=UTC),  # Washington's Birthday and Mardi Gras (Louisiana, Rhode Island)
    datetime(2026, 7, 11, tzinfo=UTC),  # Bastille Day (France), a Sunday in between (Texas, Louisiana)
]
ZONES = ["America/New_York", "Europe/Paris", "Asia/Kolkata", "UTC", "America/Los_Angeles", "Australia/Sydney"]
NUMBER_POOL = [
    "+1212555{:04d}",  # New York
    "+1850555{:04d}",  # Florida panhandle: two zones, 3 per 24 h
    "+1213555{:04d}",  # Los Angeles
    "+1800555{:04d}",  # toll-free: every NANP zone, or the campaign's zone
    "+1512555{:04d}",  # Texas: Sunday from noon
    "+1504555{:04d}",  # Louisiana: no Sundays, no state holidays
    "+1401555{:04d}",  # Rhode Island: weekday and Saturday hours, no holidays
    "+3361234{:04d}",  # France: weekdays, holidays, 4 per 30 days, 60 days after a refusal
    "+44207123{:04d}",  # London
    "+91987654{:04d}",  # India
    "+8131234{:04d}",  # Tokyo
]
REGIONS = ["US-TX", "US-LA", "US-FL", "US-RI", "US-NY"]
RETRYABLE = ["busy", "no_answer", "voicemail", "failed", "provider_error", "short_duration", "no_conversion"]


def _valid(number: str) -> bool:
    try:
        return normalize(number) == number
    except InvalidPhoneNumber:
        return False


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def windows(draw: st.DrawFn) -> list[dict[str, str]]:
    """1-2 ordered ranges on a half-hour grid; the last may cross midnight (up to the first's start)."""
    count = draw(st.integers(1, 2))
    starts = sorted(draw(st.lists(st.integers(0, 47), min_size=count, max_size=count, unique=True)))
    out = []
    for i, s in enumerate(starts):
        room = (starts[i + 1] - s) if i + 1 < count else (48 - s + starts[0])
        length = draw(st.integers(1, min(room, 40)))
        out.append({"start": hhmm(s * 30), "end": hhmm(((s + length) * 30) % 1440 or 1440)})
    return out


@st.composite
def retry_rules(draw: st.DrawFn) -> dict[str, Any]:
    rules = {}
    for outcome in RETRYABLE:
        enabled = draw(st.booleans())
        rule: dict[str, Any] = {
            "enabled": enabled,
            "max_retries": draw(st.integers(1 if enabled else 0, 3)),  # enabled with 0 retries is refused
            "interval_minutes": draw(st.lists(st.sampled_from([1, 5, 30, 90]), min_size=1, max_size=3)),
        }
        if outcome == "short_duration":
            rule["threshold_seconds"] = draw(st.sampled_from([5, 15, 30]))
        rules[outcome] = rule
    return {"max_attempts": draw(st.integers(1, 5)), "on": rules}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.sampled_from(DATES)) + timedelta(minutes=30 * draw(st.integers(0, 47)))
    count = draw(st.integers(3, 12))
    drawn = {draw(st.sampled_from(NUMBER_POOL)).format(draw(st.integers(0, 9999))) for _ in range(count)}
    numbers = sorted(n for n in drawn if _valid(n))
    assume(numbers)
    weights = draw(st.lists(st.integers(0, 5), min_size=5, max_size=5).filter(lambda w: sum(w) > 0))
    outcomes = dict(zip(["answered", "busy", "no_answer", "voicemail", "failed"], weights, strict=True))
    total = sum(outcomes.values())
    events = draw(
        st.lists(
            st.tuples(
                st.integers(1, 36 * 60),
                st.sampled_from(["pause", "windows", "pace", "dnc"]),
                st.integers(0, 1000),
            ),
            max_size=3,
        )
    )
    return {
        "start": start,
        "numbers": numbers,
        "lead_zones": {n: draw(st.sampled_from(ZONES)) for n in numbers if draw(st.integers(0, 4)) == 0},
        "lead_regions": {n: draw(st.sampled_from(REGIONS)) for n in numbers if draw(st.integers(0, 4)) == 0},
        "config": {
            "schedule": {
                "timezone": draw(st.sampled_from(ZONES)),
                "days_of_week": sorted(draw(st.sets(st.integers(1, 7), min_size=3))),
                "windows": draw(windows()),
                "recipient_local_time": draw(st.booleans()),
                **(
                    {"end_at": (start + timedelta(hours=draw(st.integers(4, 60)))).isoformat()}
                    if draw(st.booleans())
                    else {}
                ),
            },
            "pacing": {
                "max_concurrency": draw(st.integers(1, 4)),
                "attempts_per_second": draw(st.sampled_from([0.2, 0.5, 1.0, 3.0])),
            },
            "retry": draw(retry_rules()),
            "compliance": {"unknown_location": draw(st.sampled_from(["all_zones", "campaign_zone"]))},
        },
        "carrier": {
            "seed": draw(st.integers(0, 1000)),
            "outcomes": {k: v / total for k, v in outcomes.items()},
            "ring_seconds": [1, draw(st.sampled_from([5, 25, 40]))],
            "talk_seconds": [1, draw(st.sampled_from([20, 200]))],
            "conversion_rate": draw(st.sampled_from([0.0, 0.5, 1.0])),
        },
        "events": sorted(events),
        "windows_patch": draw(windows()),
    }


@dataclass
class History:
    """What changed when: configs in effect, paused spans, numbers put on the DNC list."""

    configs: list[tuple[datetime, CampaignConfig]] = field(default_factory=list)
    paused: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    dnc: dict[str, datetime] = field(default_factory=dict)
    # calls that existed when the number was put on the list: at that very instant, a dial that came first
    dialed_before_dnc: dict[str, set[str]] = field(default_factory=dict)
    started_at: datetime | None = None

    def config_at(self, t: datetime) -> CampaignConfig:
        current = self.configs[0][1]
        for since, config in self.configs:
            if since < t:
                current = config
        return current

    def configs_at(self, t: datetime) -> list[CampaignConfig]:
        """The config in force at `t`; at the very instant of a PATCH, the one before or after it (an
        attempt may start at that instant before the PATCH was answered, or after)."""
        return [self.config_at(t), *(config for since, config in self.configs if since == t)]


async def drive(rig: Rig, sc: dict[str, Any]) -> tuple[str, History]:
    extra: dict[str, dict[str, str]] = {n: {"timezone": z} for n, z in sc["lead_zones"].items()}
    for n, region in sc["lead_regions"].items():
        extra.setdefault(n, {})["region"] = region
    cid = await rig.campaign(sc["numbers"], lead_extra=extra, **sc["config"])
    history = History(started_at=rig.clock.now())
    history.configs.append((rig.clock.now(), config_of(await rig.get(cid))))
    for offset, action, pick in sc["events"]:
        await rig.runner.run_until(sc["start"] + timedelta(minutes=offset))
        camp = await rig.get(cid)
        now = rig.clock.now()
        if action == "pause" and camp["status"] == "active":
            await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
            history.paused.append((now, None))
            await rig.run(timedelta(minutes=30 + pick % 120))
            if (await rig.get(cid))["status"] == "paused":  # else end_at passed meanwhile: it completed
                await rig.api.ok("post", f"/v1/campaigns/{cid}/resume")
            history.paused[-1] = (history.paused[-1][0], rig.clock.now())
        elif action == "windows" and camp["status"] == "active":
            patched = await rig.api.ok(
                "patch", f"/v1/campaigns/{cid}", json={"schedule": {"windows": sc["windows_patch"]}}
            )
            history.configs.append((now, config_of(patched)))
        elif action == "pace" and camp["status"] == "active":
            patched = await rig.api.ok(
                "patch", f"/v1/campaigns/{cid}", json={"pacing": {"attempts_per_second": [0.2, 1.0, 2.0][pick % 3]}}
            )
            history.configs.append((now, config_of(patched)))
        elif action == "dnc":
            number = sc["numbers"][pick % len(sc["numbers"])]
            if number not in history.dnc:
                history.dialed_before_dnc[number] = {c["id"] for c in await rig.calls(cid) if c["started_at"]}
            await rig.api.ok("post", "/v1/dnc", json={"numbers": [number]})
            history.dnc.setdefault(number, now)
    return cid, history


def in_windows(config: CampaignConfig, number: str, lead_zone: str | None, region: str | None, at: datetime) -> bool:
    sched = config.schedule
    who = recipient(number, lead_zone, sched.timezone, region=region, unknown=config.compliance.unknown_location)
    zones = who.zones if sched.recipient_local_time else (sched.timezone,)
    ranges = [(w.start, w.end) for w in sched.windows]
    return all(is_open(WeeklyWindows.of(zone, sched.days_of_week, ranges), at) for zone in zones)


def check_guarantees(
    sc: dict[str, Any],
    history: History,
    camp: dict[str, Any],
    calls: list[dict[str, Any]],
    leads: list[dict[str, Any]],
    idle: bool,
) -> None:
    started = [c for c in calls if c["started_at"] is not None]
    max_conc = max(c.pacing.max_concurrency for _, c in history.configs)
    # 1. concurrency: never more calls between dial and hang-up than allowed
    points = sorted([(c["started_at"], 1) for c in started] + [(c["ended_at"], -1) for c in started if c["ended_at"]])
    level = 0
    for at, step in points:
        level += step
        assert level <= max_conc, f"concurrency {level} > {max_conc} at {at}"
    # 2. pace: any 10 s holds at most rate x 10 + 1 starts
    rate = max(c.pacing.attempts_per_second for _, c in history.configs)
    times = sorted(c["started_at"] for c in started)
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - timedelta(seconds=10):
            j += 1
        assert i - j + 1 <= rate * 10 + 1, f"{i - j + 1} starts in 10 s at {t}"
    zones_of = {lead["phone_number"]: lead["timezone"] for lead in leads}
    regions = {lead["phone_number"]: lead["region"] for lead in leads}
    unknown = history.configs[0][1].compliance.unknown_location
    for c in started:
        at, number = c["started_at"], c["to_number"]
        in_force = history.configs_at(at)
        sched = in_force[0].schedule
        region = regions.get(number)
        who = recipient(number, zones_of.get(number), sched.timezone, region=region, unknown=unknown)
        # 3. windows, start and end (under the config in force, or at an edit's instant the new one)
        assert any(in_windows(config, number, zones_of.get(number), region, at) for config in in_force), (
            f"{number} dialed at {at} outside the windows"
        )
        assert sched.end_at is None or at < sched.end_at
        assert history.started_at is not None and at >= history.started_at
        # 4. legal hours in every zone of the recipient
        for spec in legal_windows(who):
            assert is_open(spec, at), f"{number} dialed at {at} outside legal hours in {spec.zone}"
        # 11. the data table's hours by weekday and holidays, in every zone (all of the country's when
        # the number says nothing of its place)
        zones = zones_to_check(number, zones_of.get(number), region, sched.timezone, unknown)
        assert set(zones) == set(who.zones), (number, zones, who.zones)
        violation = hours_violation(number, region, zones, at)
        assert violation is None, violation
        # 5. do-not-call
        if number in history.dnc:  # (at the instant it was listed: only a dial placed before the listing)
            listed, before = history.dnc[number], history.dialed_before_dnc[number]
            assert at < listed or (at == listed and c["id"] in before), f"{number} dialed at {at}, listed {listed}"
        # 8. pause: nothing starts while paused
        for begin, end in history.paused:
            assert not (begin < at and (end is None or at < end)), f"dialed at {at} while paused"
    # 6. once: attempts 1..n, each exactly once, n = the lead's attempts
    by_lead: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        by_lead.setdefault(c["lead_id"], []).append(c)
    for lead in leads:
        attempts = sorted(c["attempt"] for c in by_lead.get(lead["id"], []))
        assert attempts == list(range(1, lead["attempts"] + 1)), (lead["phone_number"], attempts, lead["attempts"])
    # 11. the data table's rolling caps and the pause after a refusal, per number
    for number in {c["to_number"] for c in calls}:
        to_number = [c for c in started if c["to_number"] == number]
        violation = cap_violation(number, regions.get(number), [c["started_at"] for c in to_number])
        violation = violation or pause_violation(number, regions.get(number), to_number)
        assert violation is None, violation
    # 7. retries exactly as configured
    retry = history.configs[0][1].retry
    for lead in leads:
        seq = sorted(by_lead.get(lead["id"], []), key=lambda c: c["attempt"])
        used: dict[str, int] = {}
        for prev, nxt in itertools.pairwise(seq):
            reason = (
                "no_conversion" if prev["outcome"] == "answered" and prev["conversion"] is False else prev["outcome"]
            )
            rule = getattr(retry.on, reason)
            n = used.get(reason, 0)
            assert reason != OPTED_OUT and rule.enabled and n < rule.max_retries, (lead["phone_number"], reason, n)
            assert prev["attempt"] < retry.max_attempts
            wait = timedelta(minutes=rule.interval_minutes[min(n, len(rule.interval_minutes) - 1)])
            assert nxt["started_at"] >= prev["ended_at"] + wait, (lead["phone_number"], reason, n, prev, nxt)
            used[reason] = n + 1
        if idle and seq and lead["status"] in ("completed", "failed"):
            last = seq[-1]
            reason = (
                "no_conversion" if last["outcome"] == "answered" and last["conversion"] is False else last["outcome"]
            )
            rule = getattr(retry.on, reason, None)
            if rule is not None and reason != "answered":
                budget = (
                    rule.enabled and used.get(reason, 0) < rule.max_retries and last["attempt"] < retry.max_attempts
                )
                assert not budget or camp["status"] != "active", (
                    f"{lead['phone_number']}: retry budget left for {reason}"
                )
    # 10. completion
    if idle:
        assert all(c["status"] == "ended" for c in calls)
        counts = camp["counts"]
        assert counts["queued"] == counts["retry_pending"] == counts["in_progress"] == 0 or camp["status"] != "active"
        if camp["status"] == "active":
            raise AssertionError("idle with auto_complete, but still active")


@pytest.mark.asyncio
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios())
async def test_engine_guarantees_hold_for_random_campaigns(db_url: str, db: Database, sc: dict[str, Any]) -> None:
    note(f"scenario: {sc!r}")
    async with make_rig(db_url, db, sc["start"], model(**sc["carrier"]), org=f"org-{uuid.uuid4().hex[:8]}") as rig:
        cid, history = await drive(rig, sc)
        idle = await rig.runner.run_until_idle(timedelta(days=4))
        camp = await rig.get(cid)
        check_guarantees(sc, history, camp, await rig.calls(cid), await rig.leads(cid), idle)
        await rig.counts_check(cid)  # 10. counters maintained on write match a fresh count
        if camp["status"] not in ("completed", "cancelled"):
            await rig.api.ok("post", f"/v1/campaigns/{cid}/cancel")  # leave nothing running for the next example
            await rig.runner.run_until_idle(timedelta(days=1))
