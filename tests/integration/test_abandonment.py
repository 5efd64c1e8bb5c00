"""Abandoned calls: a person answers and the agent connects later than compliance.abandon_after_seconds.
The simulated carrier's `agent_connect_seconds` sets the delay; the campaign pauses when its 30-day rate
goes over max_abandon_rate; abandon_redial_hours holds the number. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.store.db import Database
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York
NO_RETRIES: dict[str, Any] = {"max_attempts": 1}
GOOD = {
    "outcomes": {"answered": 1.0},
    "ring_seconds": [5, 5],
    "talk_seconds": [30, 30],
    "agent_connect_seconds": [0.5, 1.5],
}
LATE = {**GOOD, "agent_connect_seconds": [3.0, 3.0]}


async def test_calls_say_whether_they_were_abandoned_and_when_the_agent_connected(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(**GOOD)) as rig:
        late = await rig.number("+12125550199", simulated=LATE)
        good_id = await rig.campaign([f"+1212555{3000 + i:04d}" for i in range(5)], retry=NO_RETRIES)
        late_id = await rig.campaign(
            [f"+1212555{3100 + i:04d}" for i in range(5)],
            callers=[late],
            retry=NO_RETRIES,
            compliance={"max_abandon_rate": None},  # no pause: every call here is abandoned
        )
        await rig.until_idle()
        for campaign_id, abandoned in ((good_id, False), (late_id, True)):
            answer = await rig.api.ok("get", "/v1/calls", params={"campaign_id": campaign_id})
            assert len(answer["data"]) == 5
            for call in answer["data"]:
                assert call["abandoned"] is abandoned
                delay = datetime.fromisoformat(call["agent_connected_at"]) - datetime.fromisoformat(call["answered_at"])
                assert (delay > timedelta(seconds=2)) is abandoned
            campaign = await rig.get(campaign_id)
            assert campaign["abandonment"] == {
                "window_days": 30,
                "abandoned": 5 if abandoned else 0,
                "live_answers": 5,
                "rate": 1.0 if abandoned else 0.0,
            }
            assert campaign["status"] == "completed"


async def test_a_person_who_hangs_up_before_the_agent_connects_was_not_abandoned(db_url: str, db: Database) -> None:
    brief = {**LATE, "talk_seconds": [1.5, 1.5]}  # gone after 1.5 s; the agent would have come at 3 s
    async with make_rig(db_url, db, NOON, model(**brief)) as rig:
        cid = await rig.campaign(["+12125553201"], retry=NO_RETRIES)
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        assert call["answered_at"] is not None and call["agent_connected_at"] is None and call["abandoned"] is False


async def test_abandonment_over_3_percent_of_live_answers_pauses_the_campaign(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(**GOOD)) as rig:
        good = await rig.number("+12125550101", simulated=GOOD)
        late = await rig.number("+12125550199", simulated=LATE)
        first = [f"+1212555{4000 + i:04d}" for i in range(100)]
        cid = await rig.campaign(
            first,
            callers=[good],
            retry=NO_RETRIES,
            auto_complete=False,
            pacing={"max_concurrency": 10, "attempts_per_second": 5},
        )
        await rig.until_idle()
        assert (await rig.get(cid))["abandonment"]["live_answers"] == 100
        # From now on every call is abandoned: 1/101, 2/102, 3/103 are within 3 %; 4/104 = 3.8 % is over.
        await rig.api.ok(
            "patch",
            f"/v1/campaigns/{cid}",
            json={
                "caller_ids": [{"phone_number_id": late}],
                "pacing": {"max_concurrency": 1, "attempts_per_second": 1},
            },
        )
        more = [f"+1212555{4200 + i:04d}" for i in range(10)]
        await rig.api.ok("post", f"/v1/campaigns/{cid}/leads", json={"leads": [{"phone_number": n} for n in more]})
        await rig.until_idle()
        campaign = await rig.get(cid)
        assert campaign["status"] == "paused"
        assert "abandoned" in campaign["status_reason"] and "max_abandon_rate" in campaign["status_reason"]
        abandoned = sorted((c for c in await rig.calls(cid) if c["abandoned"]), key=lambda c: c["ended_at"])
        assert len(abandoned) == 4  # one call at a time: the pause came before the fifth was dialed
        assert campaign["abandonment"] == {"window_days": 30, "abandoned": 4, "live_answers": 104, "rate": 0.038462}
        assert sum(1 for lead in await rig.leads(cid) if lead["status"] == "queued") == 6
        assert campaign["updated_at"] >= abandoned[-1]["ended_at"].isoformat().replace("+00:00", "Z")


async def test_an_abandoned_number_waits_abandon_redial_hours_to_the_second(db_url: str, db: Database) -> None:
    hours = {"abandon_redial_hours": 72, "max_abandon_rate": None}
    async with make_rig(db_url, db, NOON, model(**GOOD)) as rig:
        late = await rig.number("+12125550199", simulated=LATE)
        number = "+12125555001"
        first = await rig.campaign([number], callers=[late], retry=NO_RETRIES, compliance=hours)
        await rig.until_idle()
        (call,) = await rig.calls(first)
        assert call["abandoned"] is True
        free_at = call["ended_at"] + timedelta(hours=72)
        again = await rig.campaign([number], retry=NO_RETRIES, compliance=hours)  # another campaign, same number
        await rig.run(free_at - timedelta(seconds=1) - rig.clock.now())
        assert [c for c in await rig.calls(again) if c["started_at"] is not None] == []
        (lead,) = await rig.leads(again)
        assert lead["next_attempt_at"] == free_at
        await rig.until_idle()
        (redial,) = await rig.calls(again)
        assert redial["started_at"] == free_at


async def test_without_abandon_redial_hours_the_number_is_dialed_at_once(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(**GOOD)) as rig:
        late = await rig.number("+12125550199", simulated=LATE)
        number = "+12125555002"
        no_pause = {"max_abandon_rate": None}
        first = await rig.campaign([number], callers=[late], retry=NO_RETRIES, compliance=no_pause)
        await rig.until_idle()
        (call,) = await rig.calls(first)
        again = await rig.campaign([number], retry=NO_RETRIES)
        await rig.until_idle()
        (redial,) = await rig.calls(again)
        assert call["abandoned"] and redial["started_at"] < call["ended_at"] + timedelta(hours=1)


async def test_a_lead_claimed_before_the_abandonment_is_held_at_dial_time(db_url: str, db: Database) -> None:
    """Campaign B holds the number claimed (waiting for its one line) while campaign A's call to it is
    abandoned: B's dial-time check (the engine's memory, not the database) holds it for the 72 hours."""
    hours = {"abandon_redial_hours": 72, "max_abandon_rate": None}
    long_talk = {**GOOD, "talk_seconds": [300, 300]}
    async with make_rig(db_url, db, NOON, model(**long_talk)) as rig:
        late = await rig.number("+12125550199", simulated=LATE)
        number, other = "+12125555003", "+12125555004"
        b = await rig.campaign([other], retry=NO_RETRIES, compliance=hours, pacing={"max_concurrency": 1}, start=False)
        await rig.api.ok("post", f"/v1/campaigns/{b}/leads", json={"leads": [{"phone_number": number}]})
        await rig.api.ok("post", f"/v1/campaigns/{b}/start")
        await rig.run(timedelta(seconds=1))  # B dials `other` (300 s) and holds `number` claimed
        held = {lead["phone_number"]: lead["status"] for lead in await rig.leads(b)}
        assert held == {other: "in_call", number: "dialing"} or held == {other: "dialing", number: "dialing"}
        a = await rig.campaign([number], callers=[late], retry=NO_RETRIES, compliance=hours)
        await rig.until_idle()
        (abandoned,) = await rig.calls(a)
        assert abandoned["abandoned"] is True
        redial = next(c for c in await rig.calls(b) if c["to_number"] == number)
        assert redial["started_at"] == abandoned["ended_at"] + timedelta(hours=72)
