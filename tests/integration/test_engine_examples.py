"""The engine by example, on a virtual clock with the simulated carrier, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialwave.simulate import peak_concurrency
from dialwave.store.db import Database
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NY = ZoneInfo("America/New_York")
ALWAYS_BUSY = {"busy": 1.0}


def local(t: datetime, zone: str) -> datetime:
    return t.astimezone(ZoneInfo(zone))


async def test_campaign_runs_to_completion_with_consistent_counts(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
    async with make_rig(db_url, db, start, model(seed=7)) as rig:
        numbers = [f"+1212555{1000 + i:04d}" for i in range(40)]
        cid = await rig.campaign(
            numbers,
            schedule={"timezone": "America/New_York", "windows": [{"start": "09:00", "end": "20:00"}]},
            pacing={"max_concurrency": 4, "attempts_per_second": 1},
        )
        await rig.until_idle()
        camp = await rig.get(cid)
        assert camp["status"] == "completed"
        assert camp["counts"]["queued"] == camp["counts"]["retry_pending"] == camp["counts"]["in_progress"] == 0
        assert camp["counts"]["completed"] + camp["counts"]["failed"] == 40
        await rig.counts_check(cid)
        calls = await rig.calls(cid)
        leads = await rig.leads(cid)
        assert sum(lead["attempts"] for lead in leads) == len(calls)
        assert all(c["status"] == "ended" and c["outcome"] for c in calls)
        for c in calls:
            at = local(c["started_at"], "America/New_York")
            assert (9, 0) <= (at.hour, at.minute) < (20, 0)
        # the hand-off: rendered prompt and opening message with the campaign default
        request = next(iter(rig.carrier._calls.values())).request
        assert request.opening_message == "Hi there" and request.system_prompt == "Call there"


@pytest.mark.parametrize(
    ("start", "zone", "expected"),
    [
        # US spring forward (Sun 2026-03-08): 08:00 EDT is 12:00 UTC, not 13:00
        (datetime(2026, 3, 7, 15, 0, tzinfo=UTC), "America/New_York", datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # US fall back (Sun 2026-11-01): 08:00 EST is 13:00 UTC
        (datetime(2026, 10, 31, 14, 0, tzinfo=UTC), "America/New_York", datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # Europe spring forward (Sun 2026-03-29): 08:00 CEST is 06:00 UTC
        (datetime(2026, 3, 28, 9, 0, tzinfo=UTC), "Europe/Paris", datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # Europe fall back (Sun 2026-10-25): 08:00 CET is 07:00 UTC
        (datetime(2026, 10, 24, 8, 0, tzinfo=UTC), "Europe/Paris", datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
    ],
)
async def test_dst_edges_open_the_window_at_the_right_instant(
    db_url: str, db: Database, start: datetime, zone: str, expected: datetime
) -> None:
    # (France forbids telemarketing on weekends, so the European callee is a UK number living in Paris)
    number = "+12125550142" if zone == "America/New_York" else "+442071234567"
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(
            [number],
            schedule={"timezone": zone, "windows": [{"start": "08:00", "end": "09:00"}], "days_of_week": [6, 7]},
            lead_extra={number: {"timezone": zone}},
        )
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        assert call["started_at"] == expected


async def test_window_across_midnight_belongs_to_the_day_it_starts(db_url: str, db: Database) -> None:
    # Monday 22:00 -> Tuesday 02:00 in New York; the callee is in Tokyo (noon there), so legal hours allow it.
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 NY
    async with make_rig(db_url, db, start, model(outcomes=ALWAYS_BUSY, ring_seconds=(1, 1))) as rig:
        cid = await rig.campaign(
            ["+81312345678"],
            schedule={
                "timezone": "America/New_York",
                "days_of_week": [1],
                "windows": [{"start": "22:00", "end": "02:00"}],
            },
            retry={"max_attempts": 20, "on": {"busy": {"max_retries": 19, "interval_minutes": [60]}}},
        )
        await rig.run(timedelta(days=8))
        starts = [local(c["started_at"], "America/New_York") for c in await rig.calls(cid)]
        assert starts, "nothing was dialed"
        for at in starts:
            monday_night = at.isoweekday() == 1 and at.hour >= 22
            tuesday_small_hours = at.isoweekday() == 2 and at.hour < 2
            assert monday_night or tuesday_small_hours, at
        # hourly retries: four fit the first night (22, 23, 00, 01 o'clock), the fifth waits for next Monday
        assert [a.hour for a in starts[:4]] == [22, 23, 0, 1]
        assert (starts[4].isoweekday(), starts[4].hour, starts[4].day) == (1, 22, 9)


async def test_florida_panhandle_number_fits_both_zones_and_the_state_cap(db_url: str, db: Database) -> None:
    # 850 spans Central and Eastern time; Florida allows 08:00-20:00 and 3 attempts per 24 h.
    start = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # Monday 21:00 EST, 20:00 CST: too late in both
    async with make_rig(db_url, db, start, model(outcomes=ALWAYS_BUSY, ring_seconds=(1, 1))) as rig:
        cid = await rig.campaign(
            ["+18505550123"],
            schedule={"timezone": "UTC", "windows": [{"start": "00:00", "end": "24:00"}]},
            retry={"max_attempts": 10, "on": {"busy": {"max_retries": 9, "interval_minutes": [1]}}},
        )
        await rig.run(timedelta(days=2))
        starts = [c["started_at"] for c in await rig.calls(cid)]
        assert starts
        for at in starts:
            chicago, new_york = local(at, "America/Chicago"), local(at, "America/New_York")
            assert 8 <= chicago.hour < 20 and 8 <= new_york.hour < 20, at
        # first dial: 08:00 in Chicago (the later of the two zones), three attempts, then 24 h later
        assert starts[0] == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
        assert len([t for t in starts if t < starts[0] + timedelta(hours=24)]) == 3
        assert starts[3] == starts[0] + timedelta(hours=24)


async def test_toll_free_number_uses_the_campaign_zone(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 06:00 in Los Angeles
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(
            ["+18005550199"],
            schedule={"timezone": "America/Los_Angeles", "windows": [{"start": "00:00", "end": "24:00"}]},
            compliance={"unknown_location": "campaign_zone"},  # by default: every NANP zone (test_calling_rules.py)
        )
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        assert call["started_at"] == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 08:00 in Los Angeles


async def test_number_added_to_dnc_while_its_retry_is_pending_is_never_dialed_again(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes=ALWAYS_BUSY, ring_seconds=(1, 1))) as rig:
        cid = await rig.campaign(
            ["+12125550177", "+12125550178"],
            retry={"max_attempts": 5, "on": {"busy": {"max_retries": 4, "interval_minutes": [30]}}},
        )
        await rig.run(timedelta(minutes=5))
        assert len(await rig.calls(cid)) == 2
        await rig.api.ok("post", "/v1/dnc", json={"numbers": ["+12125550177"], "reason": "asked by phone"})
        await rig.until_idle()
        calls = await rig.calls(cid)
        assert [c["attempt"] for c in calls if c["to_number"] == "+12125550177"] == [1]
        assert len([c for c in calls if c["to_number"] == "+12125550178"]) == 5
        dnc_lead = next(lead for lead in await rig.leads(cid) if lead["phone_number"] == "+12125550177")
        assert dnc_lead["status"] == "skipped"
        await rig.counts_check(cid)


async def test_end_at_completes_the_campaign_and_marks_unfinished_leads(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(10, 10))) as rig:
        numbers = [f"+1212555{2000 + i:04d}" for i in range(50)]
        cid = await rig.campaign(
            numbers,
            schedule={
                "windows": [{"start": "00:00", "end": "24:00"}],
                "end_at": (start + timedelta(minutes=10)).isoformat(),
            },
            pacing={"max_concurrency": 1, "attempts_per_second": 1},
        )
        await rig.until_idle()
        camp = await rig.get(cid)
        assert camp["status"] == "completed" and camp["status_reason"] == "schedule.end_at passed"
        calls = await rig.calls(cid)
        assert 0 < len(calls) < 50
        assert all(c["started_at"] < start + timedelta(minutes=10) for c in calls)
        assert camp["counts"]["cancelled"] == 50 - len(calls)
        await rig.counts_check(cid)


async def test_pause_stops_new_dials_at_once_and_resume_continues(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(30, 30))) as rig:
        numbers = [f"+1212555{3000 + i:04d}" for i in range(60)]
        cid = await rig.campaign(numbers, pacing={"max_concurrency": 5, "attempts_per_second": 2})
        await rig.run(timedelta(seconds=45))
        paused_at = rig.clock.now()
        await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
        await rig.run(timedelta(hours=1))
        before = await rig.calls(cid)
        assert before and all(c["started_at"] <= paused_at for c in before)
        assert all(c["status"] == "ended" for c in before)  # calls in flight finished normally
        await rig.counts_check(cid)
        await rig.api.ok("post", f"/v1/campaigns/{cid}/resume")
        await rig.until_idle()
        assert len(await rig.calls(cid)) == 60
        assert (await rig.get(cid))["status"] == "completed"


async def test_calls_never_exceed_the_campaign_or_caller_id_concurrency_cap(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(20, 90))) as rig:
        a = await rig.number("+12125550101", max_concurrency=2)
        b = await rig.number("+12125550102")
        numbers = [f"+1212555{4000 + i:04d}" for i in range(60)]
        cid = await rig.campaign(numbers, callers=[a, b], pacing={"max_concurrency": 6, "attempts_per_second": 5})
        await rig.until_idle()
        calls = await rig.calls(cid)
        assert len(calls) == 60

        def peak(subset: list[dict[str, Any]]) -> int:
            return peak_concurrency([(c["started_at"], c["ended_at"]) for c in subset])

        assert peak(calls) == 6
        assert peak([c for c in calls if c["caller_id"] == a]) <= 2


async def test_crash_between_intent_and_outcome_never_redials(db_url: str, db: Database) -> None:
    """The dispatcher stops without flushing (a crash); a new one asks the carrier instead of redialing."""
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(120, 120))) as rig:
        numbers = [f"+1212555{5000 + i:04d}" for i in range(10)]
        cid = await rig.campaign(numbers, pacing={"max_concurrency": 10, "attempts_per_second": 5})
        await rig.engine.tick(rig.clock.now())
        rig.clock.advance(timedelta(seconds=3))
        await rig.engine.tick(rig.clock.now())  # dials started; their state is only in memory now
        dialed = rig.carrier.originated
        assert dialed > 0
        from dialwave.engine.dispatcher import Engine
        from dialwave.engine.runner import VirtualRunner
        from dialwave.engine.settings import EngineSettings

        await rig.engine.close()  # a dead process loses its database session, and with it its leases
        rig.engine = Engine(rig.db, {"simulated": rig.carrier}, EngineSettings.virtual())
        rig.runner = VirtualRunner(rig.engine, rig.clock)
        await rig.until_idle()
        calls = await rig.calls(cid)
        # dials the carrier knows were adopted (answered, attempt 1); intents it never heard of are
        # provider_error and retried as attempt 2; no (lead, attempt) reached the carrier twice
        first = [c for c in calls if c["attempt"] == 1]
        assert len(first) == 10
        assert len([c for c in first if c["outcome"] == "answered"]) == dialed
        assert len([c for c in first if c["outcome"] == "provider_error"]) == 10 - dialed
        assert len([c for c in calls if c["attempt"] == 2 and c["outcome"] == "answered"]) == 10 - dialed
        assert rig.carrier.originated == 10
        await rig.counts_check(cid)


async def test_attempt_the_carrier_never_heard_of_is_a_provider_error_and_retried(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(60, 60))) as rig:
        cid = await rig.campaign(
            ["+12125550190"], retry={"on": {"provider_error": {"max_retries": 1, "interval_minutes": [5]}}}
        )
        await rig.engine.tick(rig.clock.now())
        rig.clock.advance(timedelta(seconds=1))
        await rig.engine.tick(rig.clock.now())
        assert rig.carrier.originated == 1
        rig.carrier.forget()  # the carrier lost the call (or it never reached it)
        from dialwave.engine.dispatcher import Engine
        from dialwave.engine.runner import VirtualRunner
        from dialwave.engine.settings import EngineSettings

        await rig.engine.close()  # a dead process loses its database session, and with it its leases
        rig.engine = Engine(rig.db, {"simulated": rig.carrier}, EngineSettings.virtual())
        rig.runner = VirtualRunner(rig.engine, rig.clock)
        await rig.until_idle()
        first, second = sorted(await rig.calls(cid), key=lambda c: c["attempt"])
        assert first["started_at"] is None  # never known to have started
        assert first["outcome"] == "provider_error" and second["attempt"] == 2 and second["outcome"] == "answered"
        assert second["started_at"] >= first["ended_at"] + timedelta(minutes=5)


async def test_a_scheduled_campaign_dials_first_at_start_at_plus_the_initial_delay(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        begin = start + timedelta(hours=2)
        cid = await rig.campaign(
            ["+12125550191"],
            schedule={"start_at": begin.isoformat(), "windows": [{"start": "00:00", "end": "24:00"}]},
            pacing={"initial_delay_seconds": 120},
        )
        assert (await rig.get(cid))["status"] == "scheduled"
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        assert call["started_at"] == begin + timedelta(seconds=120)
        assert (await rig.get(cid))["status"] == "completed"


@pytest.mark.parametrize(
    ("cooldown", "since"), [("after_success_hours", "answered_at"), ("after_completion_hours", "ended_at")]
)
async def test_cooldown_holds_the_number_in_another_campaign(
    db_url: str, db: Database, cooldown: str, since: str
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(60, 60))) as rig:
        first = await rig.campaign(["+12125550150"])
        await rig.run(timedelta(minutes=5))
        (done,) = await rig.calls(first)
        second = await rig.campaign(["+12125550150"], cooldowns={cooldown: 2})
        await rig.until_idle()
        (later,) = await rig.calls(second)
        assert later["started_at"] >= done[since] + timedelta(hours=2)
        assert later["started_at"] < done[since] + timedelta(hours=2, minutes=1)  # waited, not skipped


async def test_auto_dnc_outcome_adds_the_number_and_cancels_its_retries_everywhere(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    scripted = {"+12125550160": ["busy", "answered"], "+12125550161": ["busy"]}
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, scripted=scripted)) as rig:
        retry = {"max_attempts": 4, "on": {"busy": {"max_retries": 3, "interval_minutes": [10]}}}
        other = await rig.campaign(["+12125550160"], retry=retry)  # its retry will be pending
        await rig.run(timedelta(minutes=2))
        opted = await rig.campaign(["+12125550160"], retry=retry, dnc={"auto_add_on": ["busy"]}, start=False)
        await rig.api.ok("post", f"/v1/campaigns/{opted}/start")
        await rig.until_idle()
        dnc = await rig.api.ok("get", "/v1/dnc", params={"phone_number": "+12125550160"})
        assert dnc["data"] and dnc["data"][0]["source"] == "auto"
        assert [c["attempt"] for c in await rig.calls(other)] == [1]  # its pending retry was cancelled
        (lead,) = await rig.leads(other)
        assert lead["status"] == "skipped"
        await rig.counts_check(other)
        await rig.counts_check(opted)


async def test_organization_concurrency_cap_spans_campaigns(db_url: str, db: Database) -> None:

    from dialwave.store.tables import organizations

    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(60, 60))) as rig:
        async with db.write() as conn:
            await conn.execute(
                organizations.update().where(organizations.c.id == rig.api.org_id).values(max_concurrency=3)
            )
        a = await rig.campaign([f"+1212555{6000 + i:04d}" for i in range(10)], pacing={"max_concurrency": 3})
        b = await rig.campaign([f"+1212555{7000 + i:04d}" for i in range(10)], pacing={"max_concurrency": 3})
        await rig.until_idle()
        calls = await rig.calls(a) + await rig.calls(b)
        assert len(calls) == 20
        assert peak_concurrency([(c["started_at"], c["ended_at"]) for c in calls]) == 3


async def test_a_run_of_carrier_failures_pauses_the_campaign_with_a_reason(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(seed=3, outcomes={"answered": 1.0})) as rig:
        rig.carrier.fail_originate = 1.0  # the carrier is down: every originate fails
        numbers = [f"+1212555{5000 + i:04d}" for i in range(40)]
        retry = {"on": {"provider_error": {"enabled": True, "max_retries": 2, "interval_minutes": [5]}}}
        cid = await rig.campaign(numbers, pacing={"max_concurrency": 2, "attempts_per_second": 1}, retry=retry)
        await rig.run(timedelta(minutes=5))
        camp = await rig.get(cid)
        assert camp["status"] == "paused"
        assert camp["status_reason"].startswith("paused by the circuit breaker: 10 calls in a row ended as provider")
        assert "simulated carrier outage" in camp["status_reason"]
        calls = await rig.calls(cid)
        assert 10 <= len(calls) <= 12 and all(c["outcome"] == "provider_error" for c in calls)
        await rig.run(timedelta(hours=1))
        assert len(await rig.calls(cid)) == len(calls)  # nothing dialed while paused
        rig.carrier.fail_originate = 0.0  # the carrier is back
        await rig.api.ok("post", f"/v1/campaigns/{cid}/resume")
        await rig.until_idle()
        done = await rig.get(cid)
        assert done["status"] == "completed" and done["counts"]["completed"] == 40
        await rig.counts_check(cid)
