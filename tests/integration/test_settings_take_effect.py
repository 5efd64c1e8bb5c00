"""Every setting of an agent, a phone number and a campaign changes what happens: each test sets some
and shows the effect (docs/api.md "What each field does" lists them with these tests). On SQLite and
PostgreSQL, the real engine on a virtual clock with the simulated carrier."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.store.db import Database
from dialwave.telephony.base import DialRequest
from tests import helpers
from tests.conftest import Api
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
ANSWER = model(outcomes={"answered": 1.0}, ring_seconds=(2, 2), talk_seconds=(30, 30))
NUMBERS = [f"+1212555{6000 + i:04d}" for i in range(40)]


async def context_of(rig: Rig, call_id: str) -> dict[str, Any]:
    return dict(await rig.api.ok("get", f"/v1/calls/{call_id}/context"))


async def test_the_context_carries_every_agent_and_campaign_setting_overrides_first(db_url: str, db: Database) -> None:
    agent = {
        "name": "Ava",
        "system_prompt": "You are Ava calling {{name}}.",
        "opening_message": "Hi {{name}}",
        "voice": "alloy",
        "language": "en-GB",
        "speech_settings": {"style": "calm", "responsiveness": "fast", "interruptions": "on", "emotions": "neutral"},
    }
    overrides = {
        "system_prompt": "Spring offer for {{name}}.",
        "voice": "nova",
        "language": "fr-FR",
        "speech_settings": {"emotions": "warm"},
        "campaign_context": "10% off until May",
    }
    async with make_rig(db_url, db, START, ANSWER) as rig:
        pn = await rig.number("+12125550100", friendly_name="Sales line")
        about = {"name": "Spring", "type": "sales", "description": "Renewals with a discount"}
        spring = await rig.campaign(NUMBERS[:1], callers=[pn], agent=agent, agent_overrides=overrides, **about)
        plain = await rig.campaign(NUMBERS[1:2], callers=[pn], agent=agent)
        await rig.run(timedelta(minutes=2))
        [first] = await rig.calls(spring)
        got = await context_of(rig, first["id"])
        assert got["campaign"] == {"id": spring, **about}
        assert got["from_name"] == "Sales line" and got["agent"]["name"] == "Ava"
        assert got["system_prompt"] == "Spring offer for there." and got["opening_message"] == "Hi there"
        assert (got["voice"], got["language"], got["campaign_context"]) == ("nova", "fr-FR", "10% off until May")
        assert got["speech_settings"] == {
            "style": None,
            "responsiveness": None,
            "interruptions": None,
            "emotions": "warm",
        }
        [second] = await rig.calls(plain)
        base = await context_of(rig, second["id"])
        assert (base["voice"], base["language"]) == ("alloy", "en-GB")
        assert base["speech_settings"] == agent["speech_settings"] and base["campaign_context"] is None
        assert base["system_prompt"] == "You are Ava calling there."


async def test_a_disabled_agent_holds_its_campaign(api: Api) -> None:
    cmp = await helpers.campaign(api, "held", ready=True)
    await api.ok("patch", f"/v1/agents/{cmp['agent_id']}", json={"status": "disabled"})
    refused = await api.post(f"/v1/campaigns/{cmp['id']}/start")
    assert refused.status_code == 409 and "disabled" in refused.json()["error"]["message"]
    await api.ok("patch", f"/v1/agents/{cmp['agent_id']}", json={"status": "testing"})  # a label: it dials
    assert (await api.ok("post", f"/v1/campaigns/{cmp['id']}/start"))["status"] == "active"


async def test_the_pinned_agent_version_is_dialed_and_a_new_pin_applies_after_a_pause(
    db_url: str, db: Database
) -> None:
    async with make_rig(db_url, db, START, ANSWER) as rig:
        created = await rig.api.ok("post", "/v1/agents", 201, json={"name": "a", "system_prompt": "version one"})
        await rig.api.ok("patch", f"/v1/agents/{created['id']}", json={"system_prompt": "version two"})
        pn = await rig.number()
        body = {
            "name": "pinned",
            "agent_id": created["id"],
            "agent_version": 1,
            "caller_ids": [{"phone_number_id": pn}],
            "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
            "pacing": {"max_concurrency": 1, "attempts_per_second": 1},
        }
        cid = (await rig.api.ok("post", "/v1/campaigns", 201, json=body))["id"]
        leads = [{"phone_number": n} for n in NUMBERS[:2]]
        await rig.api.ok("post", f"/v1/campaigns/{cid}/leads", json={"leads": leads})
        await rig.api.ok("post", f"/v1/campaigns/{cid}/start")
        await rig.run(timedelta(seconds=10))
        [first] = [c for c in await rig.calls(cid) if c["started_at"]]  # the other lead waits for the line
        assert (await context_of(rig, first["id"]))["system_prompt"] == "version one"
        await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
        paused = await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"agent_version": None})
        assert paused["agent_version_used"] == 2  # unpinned: the agent's current version from now on
        await rig.api.ok("post", f"/v1/campaigns/{cid}/resume")
        await rig.run(timedelta(minutes=2))
        second = next(c for c in await rig.calls(cid) if c["id"] != first["id"] and c["started_at"])
        assert (await context_of(rig, second["id"]))["system_prompt"] == "version two"


async def test_an_inactive_caller_id_is_skipped_and_a_numbers_own_pace_holds(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, ANSWER) as rig:
        slow = await rig.number("+12125550101", max_calls_per_second=0.5)
        off = await rig.number("+12125550102")
        await rig.api.ok("patch", f"/v1/phone-numbers/{off}", json={"active": False})
        cid = await rig.campaign(
            NUMBERS[:6], callers=[slow, off], pacing={"max_concurrency": 10, "attempts_per_second": 5}
        )
        await rig.run(timedelta(minutes=2))
        calls = await rig.calls(cid)
        assert len(calls) == 6 and {c["caller_id"] for c in calls} == {slow}  # never the inactive one
        starts = [c["started_at"] for c in calls]
        assert all(b - a >= timedelta(seconds=2) for a, b in itertools.pairwise(starts))  # 0.5/s


async def test_a_numbers_own_simulated_model_decides_its_calls(db_url: str, db: Database) -> None:
    ring_busy = {"outcomes": {"answered": 1.0}, "scripted": {NUMBERS[0]: ["busy"]}, "ring_seconds": [1, 1]}
    slow_talk = {
        "outcomes": {"answered": 1.0},
        "ring_seconds": [7, 7],
        "talk_seconds": [20, 20],
        "callback_rate": 1.0,
        "callback_after_hours": [3, 3],
    }
    async with make_rig(db_url, db, START, model(outcomes={"failed": 1.0})) as rig:  # the default: all fail
        scripted = await rig.number("+12125550103", simulated=ring_busy)
        talker = await rig.number("+12125550104", simulated=slow_talk)
        busy = await rig.campaign(NUMBERS[:1], callers=[scripted], retry={"max_attempts": 1})
        talk = await rig.campaign(NUMBERS[1:2], callers=[talker])
        await rig.run(timedelta(hours=4))
        assert [c["outcome"] for c in await rig.calls(busy)] == ["busy"]
        first, again = await rig.calls(talk)
        assert (first["answered_at"] - first["started_at"], first["duration_seconds"]) == (timedelta(seconds=7), 20.0)
        assert again["started_at"] == first["started_at"] + timedelta(hours=3)  # the callback it asked for


async def test_the_dnc_switch_and_custom_numbers_decide_at_the_claim(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, ANSWER) as rig:
        await rig.api.ok("post", "/v1/dnc", json={"numbers": [NUMBERS[0]]})
        ignoring = await rig.campaign(NUMBERS[:1], dnc={"enabled": False})
        custom = await rig.campaign(NUMBERS[1:3], start=False)
        await rig.api.ok(
            "patch", f"/v1/campaigns/{custom}", json={"dnc": {"sources": ["custom"], "custom_numbers": [NUMBERS[1]]}}
        )
        await rig.api.ok("post", f"/v1/campaigns/{custom}/start")
        await rig.run(timedelta(minutes=2))
        assert [c["to_number"] for c in await rig.calls(ignoring)] == [NUMBERS[0]]  # the list is off for it
        assert [c["to_number"] for c in await rig.calls(custom)] == [NUMBERS[2]]  # imported before, skipped at claim
        skipped = next(lead for lead in await rig.leads(custom) if lead["phone_number"] == NUMBERS[1])
        assert (skipped["status"], skipped["reason"]) == ("skipped", "on a do-not-call list")


async def test_without_auto_complete_a_finished_campaign_stays_active(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, ANSWER) as rig:
        kept = await rig.campaign(NUMBERS[:1], auto_complete=False)
        done = await rig.campaign(NUMBERS[1:2])
        await rig.run(timedelta(minutes=5))
        assert (await rig.get(kept))["status"] == "active"
        assert (await rig.get(done))["status"] == "completed"


@pytest.mark.parametrize("strategy", ["round_robin", "sticky", "weighted"])
async def test_caller_id_strategies_choose_through_the_engine(db_url: str, db: Database, strategy: str) -> None:
    busy_twice = model(outcomes={"busy": 1.0}, ring_seconds=(1, 1))
    async with make_rig(db_url, db, START, busy_twice) as rig:
        a, b = await rig.number("+12125550105"), await rig.number("+12125550106")
        callers = [{"phone_number_id": a, "weight": 3}, {"phone_number_id": b, "weight": 1}]
        retry = {"max_attempts": 2, "on": {"busy": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}}}
        cid = await rig.campaign(NUMBERS[:40], caller_ids=callers, caller_id_strategy=strategy, retry=retry)
        await rig.run(timedelta(minutes=10))
        calls = await rig.calls(cid)
        used = Counter(c["caller_id"] for c in calls)
        by_lead: dict[str, list[str]] = {}
        for c in sorted(calls, key=lambda c: c["attempt"]):
            by_lead.setdefault(c["lead_id"], []).append(c["caller_id"])
        assert len(calls) == 80
        if strategy == "round_robin":
            assert used[a] == used[b] == 40  # weights do not matter: in turn
        elif strategy == "sticky":
            assert all(len(set(ids)) == 1 for ids in by_lead.values())  # a lead keeps its number
        else:
            assert used[a] > 1.5 * used[b]  # 3 to 1 by weight (a hash of lead and attempt draws: 53 to 27 here)


async def test_each_retry_rule_drives_its_own_outcome(db_url: str, db: Database) -> None:
    vm, short, broken = NUMBERS[0], NUMBERS[1], NUMBERS[2]
    scripted = model(
        scripted={vm: ["voicemail", "answered"], short: ["answered"]}, ring_seconds=(1, 1), talk_seconds=(3, 3)
    )
    retry = {
        "max_attempts": 3,
        "on": {
            "voicemail": {"enabled": True, "max_retries": 1, "interval_minutes": [120]},
            "short_duration": {"enabled": True, "max_retries": 1, "interval_minutes": [30], "threshold_seconds": 10},
            "internal_error": {"enabled": True, "max_retries": 1, "interval_minutes": [7]},
        },
    }
    async with make_rig(db_url, db, START, scripted) as rig:
        real = rig.carrier.originate
        failures = [0]

        async def originate(request: DialRequest) -> str:
            if request.to_number == broken and not failures[0]:
                failures[0] += 1
                raise RuntimeError("a bug of ours, once")
            return await real(request)

        rig.carrier.originate = originate  # type: ignore[method-assign]
        cid = await rig.campaign([vm, short, broken], retry=retry, pacing={"max_concurrency": 3})
        await rig.run(timedelta(hours=3))
        calls: dict[str, list[dict[str, Any]]] = {}
        for c in await rig.calls(cid):
            calls.setdefault(c["to_number"], []).append(c)
        gap = {n: cs[1]["started_at"] - cs[0]["ended_at"] for n, cs in calls.items() if len(cs) > 1}
        assert calls[vm][0]["outcome"] == "voicemail" and gap[vm] >= timedelta(minutes=120)
        assert [c["outcome"] for c in calls[short]][:2] == ["short_duration", "short_duration"]
        assert timedelta(minutes=30) <= gap[short] < timedelta(minutes=31)
        assert calls[broken][0]["outcome"] == "internal_error"
        assert timedelta(minutes=7) <= gap[broken] < timedelta(minutes=8)
