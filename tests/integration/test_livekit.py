"""The LiveKit carrier, on SQLite and PostgreSQL: the official server SDK (livekit-api) talks Twirp to a
local fake of LiveKit's server API (protobuf bodies, JWT grants checked with the SDK's TokenVerifier);
webhooks are signed as LiveKit signs them and checked with the SDK's WebhookReceiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.clock import Clock
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.store.db import Database
from dialwave.telephony.livekit import LiveKitCarrier
from tests.livekit_fake import API_KEY, API_SECRET, FakeLiveKit
from tests.receiver import free_port, serving
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "https://dialwave.example.com"
NUMBERS = [f"+1212555{7000 + i}" for i in range(10)]
A, B, C = NUMBERS[:3]
NO_RETRIES = {"max_attempts": 1}
FAST = {"max_concurrency": 20, "attempts_per_second": 20}


def settings(url: str) -> dict[str, str]:
    return {
        "url": url,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "sip_trunk_id": "ST_outbound1",
        "agent_name": "dialwave-agent",
    }


@asynccontextmanager
async def livekit_rig(db_url: str, db: Database, **number: Any) -> AsyncIterator[tuple[Rig, FakeLiveKit, str]]:
    fake = FakeLiveKit()
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]
        base = url.removesuffix("/hook")

        def carrier(clock: Clock) -> LiveKitCarrier:
            return LiveKitCarrier(clock, PUBLIC)

        async with make_rig(db_url, db, START, model(seed=1), carriers={"livekit": carrier}) as rig:
            body = {"number": "+12125550100", "provider": "livekit", "livekit": settings(base), **number}
            created = await rig.api.ok("post", "/v1/phone-numbers", 201, json=body)
            shown = {k: v for k, v in settings(base).items() if k != "api_secret"}
            assert created["livekit"] == {**shown, "api_secret_set": True}  # the secret is write-only
            try:
                yield rig, fake, created["id"]
            finally:
                fake.release()
                await carrier_of(rig).close()


def carrier_of(rig: Rig) -> LiveKitCarrier:
    carrier = rig.engine.carriers["livekit"]
    assert isinstance(carrier, LiveKitCarrier)
    return carrier


async def settle(rig: Rig, fake: FakeLiveKit) -> None:
    """Until every dial in flight has its answer, or rings at the fake (held)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = [t for t in carrier_of(rig).tracks.values() if t.task is not None and not t.task.done()]
        if all(t.room in fake.holding and not fake.holding[t.room].done() for t in waiting):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("dials still in flight")


async def step(rig: Rig, fake: FakeLiveKit, seconds: float) -> None:
    await settle(rig, fake)
    await rig.run(timedelta(seconds=seconds))
    await settle(rig, fake)


async def by_number(rig: Rig, cid: str) -> dict[str, dict[str, Any]]:
    return {c["to_number"]: c for c in await rig.calls(cid)}


async def test_every_dial_result_of_the_mapping_table_and_the_requests(db_url: str, db: Database) -> None:
    cases = {
        NUMBERS[0]: ("answered", "answered", None),
        NUMBERS[1]: ("busy", "busy", 486),
        NUMBERS[2]: ("no_answer", "no_answer", 480),
        NUMBERS[3]: ("failed", "failed", 404),
        NUMBERS[4]: ("declined", "failed", 603),
        NUMBERS[5]: ("provider_error", "provider_error", 503),
        NUMBERS[6]: ("ring_timeout", "no_answer", None),
        NUMBERS[7]: ("hold", "no_answer", 487),  # rings past the ring timeout: we delete the room
    }
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.script = {n: [word] for n, (word, _, _) in cases.items()}
        cid = await rig.campaign(list(cases), callers=[pn], retry=NO_RETRIES, ring_timeout_seconds=25, pacing=FAST)
        await step(rig, fake, 2)
        calls = await by_number(rig, cid)
        call = calls[A]
        room = f"dialwave-{call['id']}"
        assert call["provider_call_id"] == room
        [created] = [r for r in fake.created_rooms if r.name == room]
        assert (created.empty_timeout, created.departure_timeout) == (55, 5)
        [dispatch] = [d for d in fake.dispatches if d.room == room]
        assert dispatch.agent_name == "dialwave-agent"
        metadata = json.loads(dispatch.metadata)
        assert metadata["call_id"] == call["id"] and metadata["token"].startswith("dwct_")
        assert metadata["context_url"] == f"{PUBLIC}/v1/calls/{call['id']}/context"
        [dial] = [d for d in fake.dials if d.room_name == room]
        assert (dial.sip_trunk_id, dial.sip_call_to, dial.sip_number) == ("ST_outbound1", A, "+12125550100")
        assert dial.wait_until_answered and dial.ringing_timeout.seconds == 25
        assert dial.participant_identity == "callee" and dial.participant_attributes["dialwave.call_id"] == call["id"]
        grants = {method: claims for method, claims in fake.grants_seen}
        assert grants["CreateSIPParticipant"].sip.call and grants["CreateRoom"].video.room_create
        assert grants["CreateDispatch"].video.room_admin
        await step(rig, fake, 20)  # the answered call talks for 20 s
        assert await fake.play(rig.api.client) == 0  # due only next round
        assert await fake.play(rig.api.client) == 1  # A's callee hangs up: participant_left, room_finished
        await step(rig, fake, 20)  # the held one rings past 25 s + 5 s of grace: its room is deleted
        assert fake.deleted == [f"dialwave-{calls[NUMBERS[7]]['id']}"]
        await rig.until_idle()
        done = await by_number(rig, cid)
        assert {n: done[n]["outcome"] for n in cases} == {n: want for n, (_, want, _) in cases.items()}
        assert {n: done[n]["sip_code"] for n in cases} == {n: code for n, (_, _, code) in cases.items()}
        assert 19 <= done[A]["duration_seconds"] <= 23  # answered within the first 2 s, ended after 20 more
        await rig.counts_check(cid)


async def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.script = {A: ["answered"]}
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await step(rig, fake, 2)
        await step(rig, fake, 30)
        call = (await by_number(rig, cid))[A]
        assert call["status"] == "in_call"
        room = f"dialwave-{call['id']}"
        finished = fake.event("room_finished", room)
        client = rig.api.client
        assert (await fake.deliver(client, finished, secret="another-secret-0123456789abcdefghij")).status_code == 403
        other = fake.event("room_finished", f"dialwave-{call['id']}")  # signed, but a different body is sent
        assert (await fake.deliver(client, finished, body=fake_body(other))).status_code == 403
        unsigned = await client.post(
            "/v1/carriers/livekit/events",
            content=fake_body(finished),
            headers={"Content-Type": "application/webhook+json"},
        )
        assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "BAD_SIGNATURE"
        assert (await fake.deliver(client, fake.event("room_finished", "dialwave-call_nope"))).status_code == 404
        assert (await fake.deliver(client, fake.event("room_finished", "someone-elses-room"))).status_code == 204
        await step(rig, fake, 1)
        assert (await by_number(rig, cid))[A]["status"] == "in_call"  # nothing changed
        assert (await fake.deliver(client, finished)).status_code == 204
        assert (await fake.deliver(client, finished)).status_code == 204  # a repeat: acknowledged
        await rig.until_idle()
        [done] = await rig.calls(cid)
        assert done["outcome"] == "answered" and rig.engine.stats["ended"] == 1


def fake_body(event: Any) -> str:
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(event)


async def test_the_call_context_reaches_the_agent_in_the_dispatch(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await step(rig, fake, 2)
        call = (await by_number(rig, cid))[A]
        [dispatch] = fake.dispatches
        metadata = json.loads(dispatch.metadata)  # what the agent's job carries
        auth = {"Authorization": f"Bearer {metadata['token']}"}
        context = await rig.api.client.get(metadata["context_url"].removeprefix(PUBLIC), headers=auth)
        assert context.status_code == 200 and context.json()["opening_message"] == "Hi there"
        assert context.json()["call_id"] == call["id"]
        fake.decide(f"dialwave-{call['id']}", "answered")
        await step(rig, fake, 30)
        posted = await rig.api.client.post(
            metadata["result_url"].removeprefix(PUBLIC), headers=auth, json={"summary": "booked", "conversion": True}
        )
        assert posted.status_code in (200, 201), posted.text
        await fake.play(rig.api.client)
        assert await fake.play(rig.api.client) == 1  # the callee hangs up
        await rig.until_idle()
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        assert shown["outcome"] == "answered" and shown["result"]["summary"] == "booked"


async def test_429s_hold_the_number_on_room_creation_and_on_the_dial(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [("CreateRoom", 429, "resource_exhausted", {"Retry-After": "120"})]
        fake.script = {A: ["answered"], B: ["answered"]}
        cid = await rig.campaign([A, B], callers=[pn], retry=NO_RETRIES, pacing={"attempts_per_second": 1})
        start = rig.clock.now()
        await step(rig, fake, 60)
        calls = await rig.calls(cid)
        assert [c["outcome"] for c in calls] == ["provider_error"]
        assert calls[0]["reason"].startswith("LiveKit 429 (resource_exhausted)")
        await step(rig, fake, 70)
        [_, later] = await rig.calls(cid)
        assert later["started_at"] >= start + timedelta(seconds=120)

        # a 429 on the dial itself (after the room and the dispatch) is known once the wait for the answer
        # returns: from then on the number is held for the default 30 s
        fake.fail_next = [("CreateSIPParticipant", 429, "resource_exhausted", {})]
        more = NUMBERS[3:7]
        fake.script |= {n: ["answered"] for n in [C, *more]}
        second = await rig.campaign([C, *more], callers=[pn], retry=NO_RETRIES, pacing={"attempts_per_second": 1})
        for _ in range(8):
            await step(rig, fake, 10)
        calls = {c["to_number"]: c for c in await rig.calls(second)}
        refused = calls[C]
        assert refused["outcome"] == "provider_error" and refused["sip_code"] is None
        held_from = refused["ended_at"]
        after = sorted(c["started_at"] for c in calls.values() if c["started_at"] > held_from)  # later ticks
        assert len(calls) == 5 and after and after[0] >= held_from + timedelta(seconds=30)


async def test_a_lost_room_finished_is_resolved_by_asking_livekit(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.script = {A: ["answered"]}
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, agent={"max_call_duration_seconds": 60})
        await step(rig, fake, 2)
        await step(rig, fake, 1)
        [call] = await rig.calls(cid)
        assert call["status"] == "in_call"
        fake.rooms.pop(f"dialwave-{call['id']}")  # the room closed, its webhooks never came
        while carrier_of(rig).tracks:
            await step(rig, fake, 30)
        await rig.until_idle()
        [done] = await rig.calls(cid)
        assert done["outcome"] == "answered" and done["ended_at"] == done["answered_at"] + timedelta(seconds=120)
        assert done["agent_connected_at"] == done["answered_at"] and done["abandoned"] is False


async def test_a_scripted_campaign_runs_end_to_end_with_retries(db_url: str, db: Database) -> None:
    """36 leads through the real engine, LiveKit's side played by the fake from a script: counts,
    attempts and outcomes come out as with the simulated carrier."""
    plan = ["answered", "busy", "no_answer", "failed", "declined", "provider_error"]
    leads = [f"+1646555{1000 + i}" for i in range(36)]
    script = {n: [plan[i % 6], "answered"] for i, n in enumerate(leads)}
    retry = {
        "max_attempts": 3,
        "on": {
            "busy": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
            "no_answer": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
            "provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
        },
    }
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.script = script
        cid = await rig.campaign(
            leads, callers=[pn], retry=retry, pacing={"max_concurrency": 8, "attempts_per_second": 4}
        )
        for _ in range(400):  # rounds of 15 s: an answered call talks for one round
            await step(rig, fake, 15)
            await fake.play(rig.api.client)
            if (await rig.get(cid))["status"] == "completed":
                break
        campaign = await rig.get(cid)
        assert campaign["status"] == "completed"
        calls = await rig.calls(cid)
        by_lead: dict[str, list[str]] = {}
        for c in calls:
            by_lead.setdefault(c["to_number"], []).append(c["outcome"])
        for i, n in enumerate(leads):
            kind = plan[i % 6]
            want = {"declined": ["failed"], "failed": ["failed"], "answered": ["answered"]}.get(
                kind, [kind, "answered"]
            )
            assert by_lead[n] == want, (n, by_lead[n])
        assert len(calls) == 6 * 3 + 6 * 3 * 2  # answered, failed, declined once; the others twice
        counts = campaign["counts"]
        assert (counts["completed"], counts["failed"], counts["total"]) == (24, 12, 36)
        assert len(fake.dials) == len(calls) and len(fake.dispatches) == len(calls)
        await rig.counts_check(cid)


async def test_settings_are_required_and_the_secret_is_kept(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, _, pn):
        bare = await rig.api.post("/v1/phone-numbers", json={"number": "+12125550101", "provider": "livekit"})
        assert bare.status_code == 422 and "livekit" in bare.json()["error"]["fields"]
        secretless = {k: v for k, v in settings("http://127.0.0.1:1").items() if k != "api_secret"}
        body = {"number": "+12125550101", "provider": "livekit", "livekit": secretless}
        refused = await rig.api.post("/v1/phone-numbers", json=body)
        assert refused.status_code == 422 and "livekit.api_secret" in refused.json()["error"]["fields"]
        current = await rig.api.ok("get", f"/v1/phone-numbers/{pn}")
        section = {k: v for k, v in current["livekit"].items() if k != "api_secret_set"}
        patched = await rig.api.ok("patch", f"/v1/phone-numbers/{pn}", json={"livekit": {**section, "agent_name": "b"}})
        assert patched["livekit"]["api_secret_set"] is True and patched["livekit"]["agent_name"] == "b"


async def test_after_a_restart_calls_are_asked_about_at_livekit_not_redialed(db_url: str, db: Database) -> None:
    async with livekit_rig(db_url, db) as (rig, fake, pn):
        fake.script = {A: ["answered"], B: ["hold"]}
        cid = await rig.campaign([A, B], callers=[pn], retry=NO_RETRIES, ring_timeout_seconds=30)
        await step(rig, fake, 2)
        await step(rig, fake, 1)
        before = await by_number(rig, cid)
        assert (before[A]["status"], before[B]["status"]) == ("in_call", "dialing")
        # The process dies: A talks on in its room, B still rings at LiveKit with nobody waiting for it.
        await rig.engine.close()
        await carrier_of(rig).close()
        fresh = LiveKitCarrier(rig.clock, PUBLIC)
        rig.engine = Engine(db, {"simulated": rig.carrier, "livekit": fresh}, EngineSettings.virtual())
        rig.runner = VirtualRunner(rig.engine, rig.clock)
        rig.handle.engine = rig.engine  # the API (and its webhooks) now reach the new engine
        await step(rig, fake, 1)  # start-up reconciliation: ListParticipants of each room
        after = await by_number(rig, cid)
        assert (after[A]["status"], after[B]["status"]) == ("in_call", "dialing")  # adopted, not redialed
        await step(rig, fake, 40)  # B rings past its ring timeout: its room is deleted
        await fake.end_room(rig.api.client, f"dialwave-{before[A]['id']}")  # A's callee hangs up
        assert fake.deleted == [f"dialwave-{before[B]['id']}"]
        await rig.until_idle()
        done = await by_number(rig, cid)
        assert (done[A]["outcome"], done[B]["outcome"]) == ("answered", "no_answer")
        assert [d.sip_call_to for d in fake.dials] == [A, B]  # each placed once
