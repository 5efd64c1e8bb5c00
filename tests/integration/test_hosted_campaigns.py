"""A campaign run end to end through the real engine on each hosted platform (Vapi, Retell): the local
fake answers every call with a scripted outcome per attempt and sends the platform's webhooks, and the
campaign ends with the same counts, attempts and per-lead outcomes as the same campaign on the
simulated carrier scripted alike. SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.test_retell import retell_rig
from tests.integration.test_vapi import START, vapi_rig
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
LEADS = 40
OUTCOMES = ["answered", "busy", "no_answer", "voicemail", "failed"]
RETRY = {
    "max_attempts": 3,
    "on": {
        "busy": {"max_retries": 1, "interval_minutes": [2]},
        "no_answer": {"max_retries": 2, "interval_minutes": [2, 3]},
        "voicemail": {"max_retries": 1, "interval_minutes": [2]},
        "failed": {"enabled": False},
    },
}
PACING = {"max_concurrency": 8, "attempts_per_second": 2}
VAPI_REASON = {
    "answered": "customer-ended-call",
    "busy": "customer-busy",
    "no_answer": "customer-did-not-answer",
    "voicemail": "voicemail",
    "failed": "twilio-failed-to-connect-call",
}
RETELL_REASON = {
    "answered": "user_hangup",
    "busy": "dial_busy",
    "no_answer": "dial_no_answer",
    "voicemail": "voicemail_reached",
    "failed": "dial_failed",
}


def script() -> dict[str, list[str]]:
    rng = random.Random(7)
    return {f"+1212555{7000 + i}": [rng.choice(OUTCOMES) for _ in range(3)] for i in range(LEADS)}


async def summary(rig: Rig, cid: str) -> dict[str, Any]:
    calls = await rig.calls(cid)
    per_lead: dict[str, list[str]] = {}
    for call in sorted(calls, key=lambda c: (c["to_number"], c["attempt"])):
        per_lead.setdefault(call["to_number"], []).append(call["outcome"])
    leads = {lead["phone_number"]: (lead["status"], lead["attempts"]) for lead in await rig.leads(cid)}
    campaign = await rig.get(cid)
    await rig.counts_check(cid)
    return {"status": campaign["status"], "counts": campaign["counts"], "calls": per_lead, "leads": leads}


async def simulated_run(db_url: str, db: Any, scripted: dict[str, list[str]]) -> dict[str, Any]:
    sim = model(scripted=scripted, conversion_rate=1.0, ring_seconds=(1, 5), talk_seconds=(20, 30))
    async with make_rig(db_url, db, START, sim, org="simulated") as rig:
        cid = await rig.campaign(list(scripted), retry=RETRY, pacing=PACING)
        await rig.until_idle()
        return await summary(rig, cid)


Play = Callable[[str, str, int], Awaitable[None]]  # (platform id, phase, attempt's scripted outcome)


async def drive(
    rig: Rig, cid: str, ids: Callable[[], dict[str, str]], play: Play, scripted: dict[str, list[str]]
) -> None:
    """Run the engine 10 s at a time; after each step the fake plays every call: a new one rings and is
    answered or ends at once; an answered one ends 20 s later (two steps)."""
    seen: dict[str, int] = {}  # platform id -> steps since it was answered (-1: done)
    attempts: dict[str, int] = {}
    for _ in range(400):
        await rig.run(timedelta(seconds=10))
        for platform_id, number in ids().items():
            if platform_id not in seen:
                attempts[number] = attempts.get(number, 0) + 1
                outcome = scripted[number][attempts[number] - 1]
                seen[platform_id] = 0 if outcome in ("answered", "voicemail") else -1
                await play(platform_id, "start" if seen[platform_id] == 0 else "end", OUTCOMES.index(outcome))
            elif seen[platform_id] >= 0:
                seen[platform_id] += 1
                if seen[platform_id] == 2:
                    seen[platform_id] = -1
                    number_attempt = scripted[number][attempts[number] - 1]
                    await play(platform_id, "end", OUTCOMES.index(number_attempt))
        if (await rig.get(cid))["status"] == "completed":
            return
    raise AssertionError("the campaign did not complete")


async def test_a_campaign_on_vapi_ends_as_on_the_simulated_carrier(db_url: str, db: Any) -> None:
    scripted = script()
    expected = await simulated_run(db_url, db, scripted)
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(list(scripted), callers=[pn], retry=RETRY, pacing=PACING)

        async def play(vapi_id: str, phase: str, index: int) -> None:
            outcome = OUTCOMES[index]
            if phase == "start":
                await fake.status(vapi_id, "ringing")
                assert await fake.status(vapi_id, "in-progress") == 204
                return
            if outcome not in ("answered", "voicemail"):
                await fake.status(vapi_id, "ringing")
            success = "true" if outcome == "answered" else None
            assert await fake.end(vapi_id, VAPI_REASON[outcome], success=success, summary="ok") == 204

        await drive(rig, cid, lambda: {i: c["customer"]["number"] for i, c in fake.calls.items()}, play, scripted)
        got = await summary(rig, cid)
    assert got == expected
    assert got["counts"]["completed"] > 0 and got["counts"]["failed"] > 0
    assert sum(len(v) for v in got["calls"].values()) > LEADS  # retries happened


async def test_a_campaign_on_retell_ends_as_on_the_simulated_carrier(db_url: str, db: Any) -> None:
    scripted = script()
    expected = await simulated_run(db_url, db, scripted)
    async with retell_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(list(scripted), callers=[pn], retry=RETRY, pacing=PACING)

        async def play(retell_id: str, phase: str, index: int) -> None:
            outcome = OUTCOMES[index]
            if phase == "start":
                assert await fake.start(retell_id) == 204
                return
            assert await fake.end(retell_id, RETELL_REASON[outcome], seconds=20) == 204
            if outcome == "answered":
                assert await fake.analyze(retell_id, "ok", successful=True) == 204

        await drive(rig, cid, lambda: {i: c["to_number"] for i, c in fake.calls.items()}, play, scripted)
        got = await summary(rig, cid)
    assert got == expected
