"""The Twilio carrier, on SQLite and PostgreSQL: the official SDK talks to a local fake of Twilio's
documented REST API; status callbacks are signed as Twilio signs them (the SDK's RequestValidator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dialwave.api.app import create_app
from dialwave.clock import Clock
from dialwave.config import Settings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.store.db import Database
from dialwave.store.repositories.orgs import set_twilio
from dialwave.store.tables import organizations
from dialwave.telephony.twilio import TwilioCarrier
from tests.receiver import free_port, serving
from tests.rig import Rig, make_rig, model
from tests.twilio_fake import ACCOUNT, TOKEN, FakeTwilio, callback, signed_form

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "https://dialwave.example.com"
A, B, C = "+12125557001", "+12125557002", "+12125557003"
STREAM = "wss://agent.example.com/stream"
NO_RETRIES = {"max_attempts": 1}


@asynccontextmanager
async def twilio_rig(db_url: str, db: Database) -> AsyncIterator[tuple[Rig, FakeTwilio, str]]:
    fake = FakeTwilio()
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]
        api_base = url.removesuffix("/hook")

        def carrier(clock: Clock) -> TwilioCarrier:
            return TwilioCarrier(clock, PUBLIC, api_base)

        async with make_rig(db_url, db, START, model(seed=1), carriers={"twilio": carrier}) as rig:
            body = {
                "number": "+12125550100",
                "provider": "twilio",
                "twilio": {"account_sid": ACCOUNT, "auth_token": TOKEN},
            }
            number = await rig.api.ok("post", "/v1/phone-numbers", 201, json=body)
            yield rig, fake, number["id"]
            await rig.engine.carriers["twilio"].close()  # type: ignore[attr-defined]


def fake_base(rig: Rig) -> str:
    return str(rig.engine.carriers["twilio"].api_base)  # type: ignore[attr-defined]


async def send(rig: Rig, call_id: str, sid: str, status: str | None = None, **extra: str) -> int:
    params = {"CallSid": sid, **({"CallStatus": status} if status else {}), **extra}
    response = await callback(rig.api.client, PUBLIC, call_id, params)
    return response.status_code


async def call_ids(rig: Rig, cid: str) -> dict[str, dict[str, Any]]:
    return {c["to_number"]: c for c in await rig.calls(cid)}


async def test_answered_busy_and_unanswered_calls_through_the_sdk(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(
            [A, B, C], callers=[pn], agent={"media_stream_url": STREAM}, ring_timeout_seconds=20, retry=NO_RETRIES
        )
        await rig.run(timedelta(seconds=5))
        assert len(fake.created) == 3
        calls = await call_ids(rig, cid)
        first = next(p for p in fake.created if p["To"] == A)
        call_a = calls[A]
        assert first["From"] == "+12125550100" and first["Timeout"] == "20"
        assert first["StatusCallback"] == f"{PUBLIC}/v1/carriers/twilio/status/{call_a['id']}"
        assert first["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
        assert first["StatusCallbackMethod"] == "POST" and "MachineDetection" not in first
        status_url = f"{PUBLIC}/v1/carriers/twilio/status/{call_a['id']}"
        assert (
            f'<Connect><Stream url="{STREAM}" statusCallback="{status_url}" statusCallbackMethod="POST">'
            in (first["Twiml"])
        )
        assert f'<Parameter name="call_id" value="{call_a["id"]}"/>' in first["Twiml"]
        assert '<Parameter name="var_name" value="there"/>' in first["Twiml"]
        assert call_a["provider_call_id"] == fake.sid_for(A)
        for status in ("initiated", "ringing", "in-progress"):
            assert await send(rig, call_a["id"], fake.sid_for(A), status) == 204
        await rig.run(timedelta(seconds=1))
        assert await send(rig, call_a["id"], fake.sid_for(A), StreamEvent="stream-started", StreamSid="MZ1") == 204
        assert await send(rig, calls[B]["id"], fake.sid_for(B), "ringing") == 204
        assert await send(rig, calls[B]["id"], fake.sid_for(B), "busy", SipResponseCode="486") == 204
        await send(rig, calls[C]["id"], fake.sid_for(C), "ringing")
        await rig.run(timedelta(seconds=30))  # C rings past its 20 s: we cancel it at Twilio
        assert fake.updates == [(fake.sid_for(C), {"Status": "canceled"})]
        await send(rig, calls[C]["id"], fake.sid_for(C), "canceled")
        await send(rig, call_a["id"], fake.sid_for(A), "completed", CallDuration="35")
        await rig.until_idle()
        done = await call_ids(rig, cid)
        assert (done[A]["outcome"], done[B]["outcome"], done[C]["outcome"]) == ("answered", "busy", "no_answer")
        assert done[B]["sip_code"] == 486
        assert done[A]["duration_seconds"] == pytest.approx(30, abs=1)  # answered -> completed, engine time
        assert done[A]["agent_connected_at"] - done[A]["answered_at"] == timedelta(seconds=1)
        assert done[A]["abandoned"] is False and done[B]["abandoned"] is False
        assert (await rig.get(cid))["status"] == "completed"
        await rig.counts_check(cid)


async def test_a_media_stream_that_starts_late_makes_the_call_abandoned(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        no_pause = {"max_abandon_rate": None}
        cid = await rig.campaign(
            [A, B], callers=[pn], agent={"media_stream_url": STREAM}, retry=NO_RETRIES, compliance=no_pause
        )
        await rig.run(timedelta(seconds=2))
        calls = await call_ids(rig, cid)
        for number in (A, B):
            await send(rig, calls[number]["id"], fake.sid_for(number), "in-progress")
        await rig.run(timedelta(seconds=3))  # 3 s after the answer, over abandon_after_seconds (2)
        await send(rig, calls[A]["id"], fake.sid_for(A), StreamEvent="stream-started", StreamSid="MZ2")
        await rig.run(timedelta(seconds=5))
        for number in (A, B):  # B's stream never started: the person waited 8 s for nothing
            await send(rig, calls[number]["id"], fake.sid_for(number), "completed", CallDuration="8")
        await rig.until_idle()
        done = await call_ids(rig, cid)
        assert done[A]["agent_connected_at"] - done[A]["answered_at"] == timedelta(seconds=3)
        assert done[B]["agent_connected_at"] is None
        assert done[A]["abandoned"] is True and done[B]["abandoned"] is True
        assert (await rig.get(cid))["abandonment"]["abandoned"] == 2


async def test_forged_replayed_and_out_of_order_callbacks(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        call = (await call_ids(rig, cid))[A]
        sid = fake.sid_for(A)
        forged = await callback(rig.api.client, PUBLIC, call["id"], {"CallSid": sid, "CallStatus": "busy"}, "wrong")
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "BAD_SIGNATURE"
        unsigned = await rig.api.client.post(f"/v1/carriers/twilio/status/{call['id']}", data={"CallStatus": "busy"})
        assert unsigned.status_code == 403
        assert (await rig.api.client.post("/v1/carriers/twilio/status/call_nope", data={})).status_code == 404
        await rig.run(timedelta(seconds=1))
        assert (await call_ids(rig, cid))[A]["status"] == "dialing"  # the forgery changed nothing
        await send(rig, call["id"], sid, "in-progress")
        await send(rig, call["id"], sid, "in-progress")  # replayed
        await send(rig, call["id"], sid, "ringing")  # late: older than what we know
        await rig.run(timedelta(seconds=10))
        assert (await call_ids(rig, cid))[A]["status"] == "in_call"
        await send(rig, call["id"], sid, "completed", CallDuration="9")
        await send(rig, call["id"], sid, "completed", CallDuration="9")  # replayed
        await send(rig, call["id"], sid, "in-progress")  # late
        await rig.until_idle()
        [done] = await rig.calls(cid)
        assert done["status"] == "ended" and done["outcome"] == "answered" and rig.engine.stats["ended"] == 1
        [lead] = await rig.leads(cid)
        assert lead["attempts"] == 1 and lead["status"] == "completed"


async def test_async_amd_reports_a_machine_as_voicemail(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, machine_detection={"enabled": True})
        await rig.run(timedelta(seconds=2))
        params = fake.created[0]
        assert (params["MachineDetection"], params["AsyncAmd"]) == ("Enable", "true")  # hang up: decide early
        assert params["MachineDetectionTimeout"] == "30"
        call = (await call_ids(rig, cid))[A]
        assert params["AsyncAmdStatusCallback"] == f"{PUBLIC}/v1/carriers/twilio/status/{call['id']}"
        sid = fake.sid_for(A)
        await send(rig, call["id"], sid, "in-progress")
        await send(rig, call["id"], sid, AnsweredBy="machine_end_beep", MachineDetectionDuration="4100")
        await send(rig, call["id"], sid, "completed", CallDuration="20")
        await rig.until_idle()
        ended = (await call_ids(rig, cid))[A]
        assert ended["outcome"] == "voicemail" and ended["voicemail_left"] is False
        assert fake.updates == []  # nothing played


async def test_a_voicemail_message_is_left_after_the_beep(db_url: str, db: Database) -> None:
    machine = {
        "enabled": True,
        "timeout_seconds": 45,
        "on_voicemail": "leave_message",
        "voicemail_message": "Hi {{name}}, please call us back.",
    }
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, machine_detection=machine)
        await rig.run(timedelta(seconds=2))
        params = fake.created[0]
        assert (params["MachineDetection"], params["MachineDetectionTimeout"]) == ("DetectMessageEnd", "45")
        call = (await call_ids(rig, cid))[A]
        sid = fake.sid_for(A)
        await send(rig, call["id"], sid, "in-progress")
        assert fake.updates == []  # the greeting is still playing
        await send(rig, call["id"], sid, AnsweredBy="machine_end_beep", MachineDetectionDuration="9100")
        [(updated_sid, form)] = fake.updates
        assert updated_sid == sid and "<Say>Hi there, please call us back.</Say><Hangup/>" in form["Twiml"]
        await send(rig, call["id"], sid, AnsweredBy="machine_end_beep")  # a repeat plays nothing again
        assert len(fake.updates) == 1
        await send(rig, call["id"], sid, "completed", CallDuration="31")
        await rig.until_idle()
        ended = (await call_ids(rig, cid))[A]
        assert ended["outcome"] == "voicemail" and ended["voicemail_left"] is True
        shown = await rig.api.ok("get", f"/v1/calls/{ended['id']}")
        assert shown["voicemail_left"] is True


async def test_a_detection_timeout_above_twilios_range_is_sent_as_59(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        await rig.campaign(
            [A], callers=[pn], retry=NO_RETRIES, machine_detection={"enabled": True, "timeout_seconds": 60}
        )
        await rig.run(timedelta(seconds=2))
        assert fake.created[0]["MachineDetectionTimeout"] == "59"


async def test_twilio_errors_are_provider_errors_never_crashes(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(503, {}), (429, {"Retry-After": "30"})]
        cid = await rig.campaign([A, B], callers=[pn], retry=NO_RETRIES)
        await rig.until_idle()
        calls = await rig.calls(cid)
        assert [c["outcome"] for c in calls] == ["provider_error", "provider_error"]
        assert sorted(c["reason"][:10] for c in calls) == ["Twilio 429", "Twilio 503"]
        assert (await rig.get(cid))["status"] == "completed"


async def test_a_429_retry_after_holds_the_number_until_it_has_passed(db_url: str, db: Database) -> None:
    """Twilio refuses A with 429 and Retry-After: 120. A is a provider error (retried by policy), and
    nothing more is dialed through that number for 120 s: B waits, with no attempt counted for it."""
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(429, {"Retry-After": "120"})]
        retry = {
            "max_attempts": 2,
            "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}},
        }
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, pacing={"attempts_per_second": 1})
        start = rig.clock.now()
        await rig.run(timedelta(seconds=60))
        calls = await rig.calls(cid)
        assert [(c["to_number"], c["outcome"]) for c in calls] == [(A, "provider_error")]  # B was held
        assert calls[0]["reason"].startswith("Twilio 429")
        held = {lead["phone_number"]: lead for lead in await rig.leads(cid)}[B]
        assert held["attempts"] == 0 and held["reason"] == "the carrier asked to wait (Retry-After)"
        await rig.run(timedelta(seconds=120))
        later = [c for c in await rig.calls(cid) if c["id"] != calls[0]["id"]]
        assert later and all(c["started_at"] >= start + timedelta(seconds=120) for c in later)
        assert {c["to_number"] for c in later} == {A, B}  # A's retry and B, after the wait


async def test_after_a_restart_calls_are_asked_about_at_twilio_not_redialed(db_url: str, db: Database) -> None:
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        retry = {
            "max_attempts": 2,
            "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}},
        }
        cid = await rig.campaign([A, B], callers=[pn], retry=retry)
        await rig.run(timedelta(seconds=2))
        before = await call_ids(rig, cid)
        await send(rig, before[A]["id"], fake.sid_for(A), "in-progress")
        await rig.run(timedelta(seconds=1))
        # The process dies. Twilio still has A in progress; B's call is unknown there.
        await rig.engine.close()
        await rig.engine.carriers["twilio"].close()  # type: ignore[attr-defined]
        del fake.calls[fake.sid_for(B)]
        fresh = TwilioCarrier(rig.clock, PUBLIC, fake_base(rig))
        rig.engine = Engine(db, {"simulated": rig.carrier, "twilio": fresh}, EngineSettings.virtual())
        rig.runner = VirtualRunner(rig.engine, rig.clock)
        rig.handle.engine = rig.engine  # the API now reaches the new engine (and its Twilio carrier)
        try:
            await rig.run(timedelta(seconds=1))  # start-up reconciliation
            after = await call_ids(rig, cid)
            assert after[A]["status"] == "in_call"  # adopted, not redialed
            first_b = next(c for c in await rig.calls(cid) if c["id"] == before[B]["id"])
            assert first_b["outcome"] == "provider_error"
            assert first_b["reason"].startswith("the carrier never heard of this attempt")
            await send(rig, before[A]["id"], fake.sid_for(A), "completed", CallDuration="12")
            await rig.run(timedelta(minutes=2))  # B's retry is due after 1 minute
            b_calls = [c for c in await rig.calls(cid) if c["to_number"] == B]
            assert [c["attempt"] for c in b_calls] == [1, 2]
            assert [p["To"] for p in fake.created].count(A) == 1  # A was placed once
        finally:
            await fresh.close()


async def test_a_lost_callback_does_not_hold_a_call_open(db_url: str, db: Database) -> None:
    """We cancel a call ringing too long, but Twilio's "canceled" callback never arrives; an answered call's
    "completed" never arrives either: past their deadlines the engine asks Twilio (GET /Calls/{sid})."""
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(
            [A, B], callers=[pn], retry=NO_RETRIES, ring_timeout_seconds=20, agent={"max_call_duration_seconds": 60}
        )
        await rig.run(timedelta(seconds=2))
        calls = await call_ids(rig, cid)
        await send(rig, calls[A]["id"], fake.sid_for(A), "ringing")
        await send(rig, calls[B]["id"], fake.sid_for(B), "in-progress")
        await rig.run(timedelta(seconds=30))
        assert fake.updates == [(fake.sid_for(A), {"Status": "canceled"})]  # ... and its callback is lost
        fake.calls[fake.sid_for(B)].update(status="completed", duration="50")  # ... this one's too
        await rig.until_idle()
        done = await call_ids(rig, cid)
        assert done[A]["outcome"] == "no_answer" and done[B]["outcome"] == "answered"
        cancel_at = done[A]["started_at"] + timedelta(seconds=25)  # ring timeout + grace
        assert done[A]["ended_at"] == cancel_at + timedelta(seconds=60)  # asked 60 s after the cancel
        assert done[B]["ended_at"] == done[B]["answered_at"] + timedelta(seconds=120)  # 60 s allowed + 60 s
        assert (await rig.get(cid))["status"] == "completed"


async def test_a_number_without_credentials_uses_the_organizations(db_url: str, db: Database) -> None:
    fake = FakeTwilio()
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]
        base = url.removesuffix("/hook")
        carriers = {"twilio": lambda clock: TwilioCarrier(clock, PUBLIC, base)}
        async with make_rig(db_url, db, START, model(seed=1), carriers=carriers) as rig:
            try:
                body = {"number": "+12125550100", "provider": "twilio"}
                refused = await rig.api.post("/v1/phone-numbers", json=body)
                assert refused.status_code == 422 and "twilio" in refused.json()["error"]["fields"]
                async with db.write() as conn:
                    name = await conn.scalar(
                        sa.select(organizations.c.name).where(organizations.c.id == rig.api.org_id)
                    )
                    assert await set_twilio(conn, name, {"account_sid": ACCOUNT, "auth_token": TOKEN})
                pn = (await rig.api.ok("post", "/v1/phone-numbers", 201, json=body))["id"]
                cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
                await rig.run(timedelta(seconds=2))
                assert len(fake.created) == 1 and fake.created[0]["From"] == "+12125550100"  # Basic auth passed
                call = (await call_ids(rig, cid))[A]
                assert await send(rig, call["id"], fake.sid_for(A), "busy") == 204  # signed with the org's token
                await rig.until_idle()
                assert (await call_ids(rig, cid))[A]["outcome"] == "busy"
            finally:
                await rig.engine.carriers["twilio"].close()  # type: ignore[attr-defined]


async def sms(rig: Rig, number_id: str, sender: str, text: str, token: str = TOKEN) -> int:
    url = f"{PUBLIC}/v1/carriers/twilio/sms/{number_id}"
    body, headers = signed_form(url, {"From": sender, "To": "+12125550100", "Body": text, "MessageSid": "SM1"}, token)
    response = await rig.api.client.post(f"/v1/carriers/twilio/sms/{number_id}", data=body, headers=headers)
    return response.status_code


async def test_a_stop_reply_by_text_opts_the_sender_out_at_once(db_url: str, db: Database) -> None:
    """A STOP texted to a Twilio number lists its sender, skips the sender's waiting leads and revokes the
    sender's consents with the channel sms; a forged or ordinary message changes nothing."""
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        consent = {"phone_number": A, "scope": "ai_voice", "source": "form", "captured_at": "2026-03-01T00:00:00Z"}
        cns = await rig.api.ok("post", "/v1/consents", 201, json=consent)
        cid = await rig.campaign([A, B], callers=[pn], start=False, retry=NO_RETRIES)

        assert await sms(rig, pn, A, "STOP", token="not-the-token") == 403
        assert await sms(rig, pn, A, "stop calling me at work?") == 200
        assert (await rig.api.ok("get", "/v1/dnc", params={"phone_number": A}))["data"] == []

        assert await sms(rig, pn, A, " Stop. ") == 200
        listed = (await rig.api.ok("get", "/v1/dnc", params={"phone_number": A}))["data"]
        assert [(d["phone_number"], d["source"]) for d in listed] == [(A, "sms")]
        revoked = await rig.api.ok("get", f"/v1/consents/{cns['id']}")
        assert revoked["revoked_channel"] == "sms" and revoked["revoked_at"] is not None
        leads = {lead["phone_number"]: lead for lead in await rig.leads(cid)}
        assert leads[A]["status"] == "skipped" and leads[B]["status"] == "queued"
        await rig.counts_check(cid)

        await rig.api.ok("post", f"/v1/campaigns/{cid}/start")
        await rig.run(timedelta(seconds=5))
        assert [p["To"] for p in fake.created] == [B]  # the opted-out sender is never dialed
        assert await sms(rig, "pn_nope", A, "STOP") == 404


async def test_the_status_and_sms_webhooks_are_checked_against_one_public_url(db_url: str, db: Database) -> None:
    """Both Twilio webhooks are signed over URLs on the same base: the Twilio carrier's public URL in the
    process that runs it, else DIALWAVE_PUBLIC_URL (an API-only process), whose trailing slash is not
    doubled. An API-only process takes status callbacks only on PostgreSQL (it passes them on)."""
    async with twilio_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        call_id = (await call_ids(rig, cid))[A]["id"]
        assert await send(rig, call_id, fake.sid_for(A), "ringing") == 204  # the engine's process
        assert await sms(rig, pn, B, "hello") == 200

        settings = Settings(database_url=db_url, public_url=f"{PUBLIC}/", rate_limit_per_second=0)
        api_only = create_app(settings, db=db, clock=rig.clock)
        transport = httpx.ASGITransport(app=api_only)
        async with httpx.AsyncClient(transport=transport, base_url="http://dialwave.test") as client:
            status = await callback(client, PUBLIC, call_id, {"CallSid": fake.sid_for(A), "CallStatus": "in-progress"})
            text = {"From": B, "To": "+12125550100", "Body": "hello", "MessageSid": "SM2"}
            answers = {}
            for base in (PUBLIC, f"{PUBLIC}/"):
                body, headers = signed_form(f"{base}/v1/carriers/twilio/sms/{pn}", text)
                answers[base] = (
                    await client.post(f"/v1/carriers/twilio/sms/{pn}", data=body, headers=headers)
                ).status_code
        assert status.status_code == (204 if db.dialect == "postgresql" else 503)
        assert answers == {PUBLIC: 200, f"{PUBLIC}/": 403}
