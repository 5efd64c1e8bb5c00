"""The Telnyx carrier, on SQLite and PostgreSQL: the official SDK (AsyncTelnyx) talks to a local fake of
Telnyx's documented Call Control API; webhooks are signed as Telnyx signs them (Ed25519 over
`timestamp|body`) and checked with the SDK's verify_webhook_signature."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from dialwave.clock import Clock
from dialwave.store.db import Database
from dialwave.telephony.telnyx import TelnyxCarrier
from tests.receiver import free_port, serving
from tests.rig import Rig, make_rig, model
from tests.telnyx_fake import API_KEY, OTHER_KEY, PUBLIC_KEY, FakeTelnyx

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "https://dialwave.example.com"
NUMBERS = [f"+1212555{7000 + i}" for i in range(12)]
A, B, C = NUMBERS[:3]
NO_RETRIES = {"max_attempts": 1}
SETTINGS = {"api_key": API_KEY, "connection_id": "1494404757140276705", "public_key": PUBLIC_KEY}


@asynccontextmanager
async def telnyx_rig(db_url: str, db: Database, **number: Any) -> AsyncIterator[tuple[Rig, FakeTelnyx, str]]:
    fake = FakeTelnyx(PUBLIC)
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]
        api_base = url.removesuffix("/hook") + "/v2"

        def carrier(clock: Clock) -> TelnyxCarrier:
            return TelnyxCarrier(clock, PUBLIC, api_base)

        async with make_rig(db_url, db, START, model(seed=1), carriers={"telnyx": carrier}) as rig:
            body = {"number": "+12125550100", "provider": "telnyx", "telnyx": SETTINGS, **number}
            created = await rig.api.ok("post", "/v1/phone-numbers", 201, json=body)
            assert created["telnyx"] == {
                "connection_id": SETTINGS["connection_id"],
                "public_key": PUBLIC_KEY,
                "machine_detection": "detect",
                "api_key_set": True,
            }  # the api_key is write-only
            try:
                yield rig, fake, created["id"]
            finally:
                await rig.engine.carriers["telnyx"].close()


async def by_number(rig: Rig, cid: str) -> dict[str, dict[str, Any]]:
    return {c["to_number"]: c for c in await rig.calls(cid)}


async def send(rig: Rig, fake: FakeTelnyx, to: str, event: str, **extras: Any) -> int:
    return (await fake.send(rig.api.client, fake.ccid_for(to), event, **extras)).status_code


async def test_every_hangup_of_the_mapping_table_and_the_dial_request(db_url: str, db: Database) -> None:
    cases = {  # number -> (webhooks after call.initiated, expected outcome, sip code)
        NUMBERS[0]: ([("call.answered", {}), ("call.hangup", {"hangup_cause": "normal_clearing"})], "answered"),
        NUMBERS[1]: ([("call.hangup", {"hangup_cause": "user_busy", "sip_hangup_cause": "486"})], "busy"),
        NUMBERS[2]: ([("call.hangup", {"hangup_cause": "timeout", "sip_hangup_cause": "unspecified"})], "no_answer"),
        NUMBERS[3]: ([("call.hangup", {"hangup_cause": "no_answer", "sip_hangup_cause": "480"})], "no_answer"),
        NUMBERS[4]: ([("call.hangup", {"hangup_cause": "call_rejected", "sip_hangup_cause": "603"})], "failed"),
        NUMBERS[5]: ([("call.hangup", {"hangup_cause": "not_found", "sip_hangup_cause": "404"})], "failed"),
        NUMBERS[6]: ([("call.hangup", {"hangup_cause": "unspecified", "sip_hangup_cause": "503"})], "provider_error"),
        NUMBERS[7]: ([("call.hangup", {"hangup_cause": "unspecified", "sip_hangup_cause": "unspecified"})], "failed"),
        NUMBERS[8]: ([("call.hangup", {"hangup_cause": "call_rejected", "sip_hangup_cause": "486"})], "busy"),
        NUMBERS[9]: ([("call.hangup", {"hangup_cause": "normal_clearing", "hangup_source": "callee"})], "no_answer"),
        NUMBERS[10]: (
            [("call.answered", {}), ("call.hangup", {"hangup_cause": "time_limit", "sip_hangup_cause": "200"})],
            "answered",
        ),
    }
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        stream = "wss://agent.example.com/stream?room=1"
        cid = await rig.campaign(
            list(cases),
            callers=[pn],
            retry=NO_RETRIES,
            ring_timeout_seconds=25,
            agent={"media_stream_url": stream},
            pacing={"max_concurrency": 20, "attempts_per_second": 20},
        )
        await rig.run(timedelta(seconds=3))
        assert len(fake.created) == len(cases)
        calls = await by_number(rig, cid)
        first = next(b for b in fake.created if b["to"] == NUMBERS[0])
        call = calls[NUMBERS[0]]
        assert first["connection_id"] == SETTINGS["connection_id"] and first["from"] == "+12125550100"
        assert first["webhook_url"] == f"{PUBLIC}/v1/carriers/telnyx/events/{call['id']}"
        assert (first["webhook_url_method"], first["timeout_secs"], first["command_id"]) == ("POST", 25, call["id"])
        assert "answering_machine_detection" not in first  # the campaign does not ask for detection
        assert call["provider_call_id"] == fake.ccid_for(NUMBERS[0])
        query = parse_qs(urlparse(first["stream_url"]).query)
        assert first["stream_url"].startswith(stream + "&") and first["stream_track"] == "both_tracks"
        assert query["call_id"] == [call["id"]] and query["token"][0].startswith("dwct_")
        for number, (events, _) in cases.items():
            assert await send(rig, fake, number, "call.initiated") == 204
            for kind, extras in events[:-1]:
                assert await send(rig, fake, number, kind, **extras) == 204
        await rig.run(timedelta(seconds=20))  # the answered ones talk for 20 s
        for number, (events, _) in cases.items():
            kind, extras = events[-1]
            assert await send(rig, fake, number, kind, **extras) == 204
        await rig.until_idle()
        done = await by_number(rig, cid)
        assert {n: done[n]["outcome"] for n in cases} == {n: want for n, (_, want) in cases.items()}
        assert (done[NUMBERS[1]]["sip_code"], done[NUMBERS[4]]["sip_code"]) == (486, 603)
        assert fake.actions == []  # nothing was hung up or transferred by us
        await rig.counts_check(cid)


async def test_machine_detection_standard_and_premium_and_our_cancel(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        detect = {"enabled": True, "timeout_seconds": 40}
        cid = await rig.campaign([A, B, C], callers=[pn], retry=NO_RETRIES, machine_detection=detect)
        await rig.run(timedelta(seconds=2))
        body = fake.created[0]
        assert body["answering_machine_detection"] == "detect"
        assert body["answering_machine_detection_config"] == {"total_analysis_time_millis": 40_000}
        await send(rig, fake, A, "call.answered")
        await send(rig, fake, A, "call.machine.detection.ended", result="machine")
        await send(rig, fake, A, "call.hangup", hangup_cause="normal_clearing")
        await send(rig, fake, B, "call.answered")
        await send(rig, fake, B, "call.machine.detection.ended", result="not_sure")  # goes on as a person
        await rig.run(timedelta(seconds=40))  # C rings past its 30 s: we hang it up at Telnyx
        await send(rig, fake, B, "call.hangup", hangup_cause="normal_clearing")
        assert [(ccid, name) for ccid, name, _ in fake.actions] == [(fake.ccid_for(C), "hangup")]
        assert await fake.play(rig.api.client) == 1  # Telnyx's call.hangup for our hang-up (originator_cancel)
        await rig.until_idle()
        done = await by_number(rig, cid)
        assert [done[n]["outcome"] for n in (A, B, C)] == ["voicemail", "answered", "no_answer"]
        assert done[A]["voicemail_left"] is False

        section = {k: v for k, v in SETTINGS.items() if k != "api_key"}  # the write-only key is kept
        await rig.api.ok(
            "patch", f"/v1/phone-numbers/{pn}", json={"telnyx": {**section, "machine_detection": "premium"}}
        )
        again = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, machine_detection={"enabled": True})
        await rig.run(timedelta(seconds=2))
        assert fake.created[-1]["answering_machine_detection"] == "premium"
        await send(rig, fake, A, "call.answered")
        await send(rig, fake, A, "call.machine.premium.detection.ended", result="fax_detected")
        await send(rig, fake, A, "call.hangup", hangup_cause="normal_clearing")
        await rig.until_idle()
        assert (await by_number(rig, again))[A]["outcome"] == "voicemail"


async def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        call = (await by_number(rig, cid))[A]
        ccid = fake.ccid_for(A)
        hangup = fake.envelope(ccid, "call.hangup", hangup_cause="user_busy", sip_hangup_cause="486")
        forged = await fake.deliver(rig.api.client, hangup, OTHER_KEY)
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "BAD_SIGNATURE"
        stale = await fake.deliver(rig.api.client, hangup, at=int(time.time()) - 600)  # a replay, 10 min late
        assert stale.status_code == 403
        url = f"/v1/carriers/telnyx/events/{call['id']}"
        assert (await rig.api.client.post(url, json=hangup)).status_code == 403  # unsigned
        tampered = await rig.api.client.post(
            url,
            content=b'{"data": {"event_type": "call.answered"}}',
            headers={"telnyx-signature-ed25519": "A" * 88, "telnyx-timestamp": str(int(time.time()))},
        )
        assert tampered.status_code == 403
        assert (await rig.api.client.post("/v1/carriers/telnyx/events/call_nope", json=hangup)).status_code == 404
        await rig.run(timedelta(seconds=1))
        assert (await by_number(rig, cid))[A]["status"] == "dialing"  # nothing changed
        assert (await fake.deliver(rig.api.client, hangup)).status_code == 204  # the genuine one
        assert (await fake.deliver(rig.api.client, hangup)).status_code == 204  # replayed: acknowledged
        await rig.until_idle()
        [done] = await rig.calls(cid)
        assert done["outcome"] == "busy" and rig.engine.stats["ended"] == 1


async def test_the_call_context_reaches_the_agent_over_a_sip_transfer(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        agent = {"sip_uri": "sip:agent@agents.example.com"}
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, agent=agent)
        await rig.run(timedelta(seconds=2))
        assert "stream_url" not in fake.created[0]  # the agent takes the call by SIP, not a media stream
        call = (await by_number(rig, cid))[A]
        await send(rig, fake, A, "call.initiated")
        assert fake.actions == []
        await send(rig, fake, A, "call.answered")
        [(ccid, name, body)] = fake.actions
        assert (ccid, name, body["to"]) == (fake.ccid_for(A), "transfer", agent["sip_uri"])
        headers = {h["name"]: h["value"] for h in body["custom_headers"]}
        assert headers["X-Dialwave-Call-Id"] == call["id"]
        await send(rig, fake, A, "call.answered")  # a repeat transfers nothing again
        assert len(fake.actions) == 1
        # the agent side: the token it was handed reads the call's context and posts the result
        auth = {"Authorization": f"Bearer {headers['X-Dialwave-Token']}"}
        context = await rig.api.client.get(f"/v1/calls/{call['id']}/context", headers=auth)
        assert context.status_code == 200 and context.json()["opening_message"] == "Hi there"
        posted = await rig.api.client.post(
            f"/v1/calls/{call['id']}/result", headers=auth, json={"summary": "booked", "conversion": True}
        )
        assert posted.status_code in (200, 201), posted.text
        await rig.run(timedelta(seconds=30))
        await send(rig, fake, A, "call.hangup", hangup_cause="normal_clearing", hangup_source="callee")
        await rig.until_idle()
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        assert shown["outcome"] == "answered" and shown["result"]["summary"] == "booked"


async def test_a_429_holds_the_number_for_its_retry_after_or_the_default(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(429, {"Retry-After": "120"})]
        retry = {
            "max_attempts": 2,
            "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}},
        }
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, pacing={"attempts_per_second": 1})
        start = rig.clock.now()
        await rig.run(timedelta(seconds=60))
        calls = await rig.calls(cid)
        assert [(c["to_number"], c["outcome"]) for c in calls] == [(A, "provider_error")]
        assert calls[0]["reason"].startswith("Telnyx 429 (10011)")
        held = {lead["phone_number"]: lead for lead in await rig.leads(cid)}[B]
        assert held["attempts"] == 0 and held["reason"] == "the carrier asked to wait (Retry-After)"
        await rig.run(timedelta(seconds=120))
        later = [c for c in await rig.calls(cid) if c["id"] != calls[0]["id"]]
        assert {c["to_number"] for c in later} == {A, B}
        assert all(c["started_at"] >= start + timedelta(seconds=120) for c in later)

        fake.fail_next = [(429, {})]  # no Retry-After: the default hold, 30 s
        second = await rig.campaign([C, NUMBERS[3]], callers=[pn], retry=NO_RETRIES, pacing={"attempts_per_second": 1})
        at = rig.clock.now()
        await rig.run(timedelta(seconds=20))
        assert [c["outcome"] for c in await rig.calls(second)] == ["provider_error"]
        await rig.run(timedelta(seconds=20))
        [_, waited] = await rig.calls(second)
        assert at + timedelta(seconds=30) <= waited["started_at"] <= at + timedelta(seconds=32)


async def test_the_numbers_max_concurrency_caps_calls_in_flight(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db, max_concurrency=2) as (rig, fake, pn):
        await rig.campaign(NUMBERS[:5], callers=[pn], retry=NO_RETRIES, pacing={"max_concurrency": 10})
        await rig.run(timedelta(seconds=10))
        assert len(fake.created) == 2  # the number's limit, below the campaign's
        for body in list(fake.created):
            await send(rig, fake, body["to"], "call.hangup", hangup_cause="user_busy")
        await rig.run(timedelta(seconds=5))
        assert len(fake.created) == 4
        assert sum(c["alive"] for c in fake.calls.values()) == 2


async def test_a_lost_hangup_webhook_is_resolved_by_asking_telnyx(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, agent={"max_call_duration_seconds": 60})
        await rig.run(timedelta(seconds=2))
        await send(rig, fake, A, "call.answered")
        fake.calls[fake.ccid_for(A)].update(alive=False, duration=50)  # ... its call.hangup never comes
        await rig.until_idle()
        [done] = await rig.calls(cid)
        assert done["outcome"] == "answered" and done["ended_at"] == done["answered_at"] + timedelta(seconds=120)
        assert done["agent_connected_at"] == done["answered_at"] and done["abandoned"] is False


async def test_a_scripted_campaign_runs_end_to_end_with_retries(db_url: str, db: Database) -> None:
    """36 leads through the real engine, Telnyx's side played by the fake from a script: counts,
    attempts and outcomes come out as with the simulated carrier."""
    plan = ["answered", "busy", "no_answer", "failed", "voicemail", "provider_error"]
    leads = [f"+1646555{1000 + i}" for i in range(36)]
    script = {
        n: [plan[i % 6]] if plan[i % 6] not in ("busy", "no_answer") else [plan[i % 6], "answered"]
        for i, n in enumerate(leads)
    }
    retry = {
        "max_attempts": 3,
        "on": {
            "busy": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
            "no_answer": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
            "provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [5]},
            "voicemail": {"enabled": False},
        },
    }
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        fake.script = script
        cid = await rig.campaign(
            leads, callers=[pn], retry=retry, pacing={"max_concurrency": 8, "attempts_per_second": 4}
        )
        for _ in range(400):  # rounds of 15 s: an answered call talks for one round
            await rig.run(timedelta(seconds=15))
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
            want = {"busy": ["busy", "answered"], "no_answer": ["no_answer", "answered"]}.get(kind)
            want = want or (["provider_error", "provider_error"] if kind == "provider_error" else [kind])
            assert by_lead[n] == want, (n, by_lead[n])
        assert (
            len(calls) == 6 * 3 + 6 * 3 * 2
        )  # answered, failed, voicemail once; busy, no_answer, provider_error twice
        counts = campaign["counts"]
        assert (counts["completed"], counts["failed"], counts["total"]) == (18, 18, 36)  # voicemail is not reached
        await rig.counts_check(cid)


async def test_settings_are_required_and_refused_on_another_provider(db_url: str, db: Database) -> None:
    async with telnyx_rig(db_url, db) as (rig, _, pn):
        bare = await rig.api.post("/v1/phone-numbers", json={"number": "+12125550101", "provider": "telnyx"})
        assert bare.status_code == 422 and "telnyx" in bare.json()["error"]["fields"]
        keyless = {k: v for k, v in SETTINGS.items() if k != "api_key"}
        body = {"number": "+12125550101", "provider": "telnyx", "telnyx": keyless}
        refused = await rig.api.post("/v1/phone-numbers", json=body)
        assert refused.status_code == 422 and "telnyx.api_key" in refused.json()["error"]["fields"]
        bad_key = {**SETTINGS, "public_key": "not-a-key"}
        body = {"number": "+12125550101", "provider": "telnyx", "telnyx": bad_key}
        assert (await rig.api.post("/v1/phone-numbers", json=body)).status_code == 422
        body = {"number": "+12125550101", "provider": "simulated", "telnyx": SETTINGS}
        misplaced = await rig.api.post("/v1/phone-numbers", json=body)
        assert misplaced.status_code == 422 and "telnyx" in misplaced.json()["error"]["fields"]
        dropped = await rig.api.client.patch(
            f"/v1/phone-numbers/{pn}",
            headers={"Authorization": f"Bearer {rig.api.key}"},
            json={"telnyx": {**SETTINGS, "api_key": None}},
        )
        assert dropped.status_code == 200 and dropped.json()["telnyx"]["api_key_set"] is True  # kept, as Twilio's


async def test_the_agent_is_connected_when_the_transfer_is_bridged_or_the_stream_starts(
    db_url: str, db: Database
) -> None:
    """agent_connected is the agent's leg (call.bridged after the transfer to its sip_uri) or its media
    stream (streaming.started), not the callee's answer: 3 s to the agent is an abandoned call (over
    compliance.abandon_after_seconds, 2), 1 s is not."""
    async with telnyx_rig(db_url, db) as (rig, fake, pn):
        by_sip = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, agent={"sip_uri": "sip:agent@example.com"})
        by_stream = await rig.campaign(
            [B], callers=[pn], retry=NO_RETRIES, agent={"media_stream_url": "wss://agent.example.com/s"}
        )
        await rig.run(timedelta(seconds=2))
        for number in (A, B):
            await send(rig, fake, number, "call.initiated")
            await send(rig, fake, number, "call.answered")  # the transfer (A) goes out; B's stream is due
        await rig.run(timedelta(seconds=1))
        stream_due = [d for d in fake.due if d[1] == "streaming.started"]
        bridge_due = [d for d in fake.due if d[1] == "call.bridged"]
        assert [d[0] for d in stream_due] == [fake.ccid_for(B)] and [d[0] for d in bridge_due] == [fake.ccid_for(A)]
        fake.due = bridge_due
        await fake.play(rig.api.client)  # A's agent leg is bridged 1 s after the answer
        fake.due = stream_due
        await rig.run(timedelta(seconds=2))
        await fake.play(rig.api.client)  # B's stream starts 3 s after the answer
        await rig.run(timedelta(seconds=20))
        for number in (A, B):
            await send(rig, fake, number, "call.hangup", hangup_cause="normal_clearing", hangup_source="callee")
        await rig.until_idle()
        a, b = (await by_number(rig, by_sip))[A], (await by_number(rig, by_stream))[B]
        assert a["agent_connected_at"] - a["answered_at"] == timedelta(seconds=1) and a["abandoned"] is False
        assert b["agent_connected_at"] - b["answered_at"] == timedelta(seconds=3) and b["abandoned"] is True
