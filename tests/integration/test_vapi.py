"""The Vapi carrier, on SQLite and PostgreSQL: the official SDK (vapi-server-sdk) talks to a local fake of
Vapi's documented API; the fake sends the server messages Vapi sends (status-update, end-of-call-report)
to the server URL and with the credentials that dialwave put on the call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.clock import Clock
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.telephony.vapi import VapiCarrier
from tests.receiver import free_port, serving
from tests.rig import Rig, make_rig, model
from tests.vapi_fake import API_KEY, ASSISTANT, CREDENTIAL, SECRET, VAPI_NUMBER, FakeVapi

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "https://dialwave.example.com"
A, B, C = "+12125557001", "+12125557002", "+12125557003"
NO_RETRIES = {"max_attempts": 1}
FAST = {"max_concurrency": 20, "attempts_per_second": 50}
TRANSCRIPT = "AI: Hi\nUser: Yes"


def vapi_settings(**over: Any) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "assistant_id": ASSISTANT,
        "phone_number_id": VAPI_NUMBER,
        "webhook_secret": SECRET,
        **over,
    }


@asynccontextmanager
async def vapi_rig(db_url: str, db: Any, **number: Any) -> AsyncIterator[tuple[Rig, FakeVapi, str]]:
    fake = FakeVapi()
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]
        fake.base = url

        def carrier(clock: Clock) -> VapiCarrier:
            return VapiCarrier(clock, PUBLIC, url)

        async with make_rig(db_url, db, START, model(seed=1), carriers={"vapi": carrier}) as rig:

            async def deliver(target: str, payload: dict[str, Any], headers: dict[str, str]) -> int:
                assert target.startswith(PUBLIC)
                response = await rig.api.client.post(target.removeprefix(PUBLIC), json=payload, headers=headers)
                return response.status_code

            fake.deliver = deliver
            body = {"number": "+12125550100", "provider": "vapi", "vapi": vapi_settings(), **number}
            created = await rig.api.ok("post", "/v1/phone-numbers", 201, json=body)
            try:
                yield rig, fake, created["id"]
            finally:
                await rig.engine.carriers["vapi"].close()  # type: ignore[attr-defined]


async def by_number(rig: Rig, cid: str) -> dict[str, dict[str, Any]]:
    return {c["to_number"]: c for c in await rig.calls(cid)}


async def test_the_call_carries_the_context_and_the_report_ends_it_with_its_result(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, lead_extra={A: {"variables": {"plan": "gold"}}})
        await rig.run(timedelta(seconds=2))
        [body] = fake.created
        call = (await by_number(rig, cid))[A]
        assert body["assistantId"] == ASSISTANT and body["phoneNumberId"] == VAPI_NUMBER
        assert body["customer"] == {"number": A}
        overrides = body["assistantOverrides"]
        assert overrides["variableValues"] == {"name": "there", "plan": "gold"}
        meta = overrides["metadata"]
        assert meta["dialwave_call_id"] == call["id"] and meta["dialwave_campaign_id"] == cid
        assert meta["dialwave_attempt"] == 1 and meta["dialwave_token"]
        assert overrides["server"] == {
            "url": f"{PUBLIC}/v1/carriers/vapi/events/{call['id']}",
            "timeoutSeconds": 20,
            "headers": {"X-Vapi-Secret": SECRET},
        }
        assert overrides["serverMessages"] == ["status-update", "end-of-call-report"]
        vapi_id = fake.id_for(A)
        assert call["provider_call_id"] == vapi_id
        # the agent side: a tool with the call's token reads the context from dialwave
        context = await rig.api.client.get(
            f"/v1/calls/{call['id']}/context", headers={"Authorization": f"Bearer {meta['dialwave_token']}"}
        )
        assert context.status_code == 200, context.text
        assert context.json()["variables"] == {"name": "there", "plan": "gold"}
        assert await fake.status(vapi_id, "ringing") == 204
        assert await fake.status(vapi_id, "in-progress") == 204
        await rig.run(timedelta(seconds=40))
        assert (await by_number(rig, cid))[A]["status"] == "in_call"
        assert await fake.status(vapi_id, "ended") == 204  # the report decides, not this
        report = await fake.end(
            vapi_id,
            "customer-ended-call",
            summary="Booked for Tuesday.",
            success="true",
            transcript="AI: Hi\nUser: Yes",
        )
        assert report == 204
        await rig.until_idle()
        ended = (await by_number(rig, cid))[A]
        assert (ended["outcome"], ended["conversion"]) == ("answered", True)
        assert ended["duration_seconds"] == pytest.approx(40, abs=1)
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        result = shown["result"]
        assert result["summary"] == "Booked for Tuesday." and result["conversion"] is True
        assert result["transcript"] == TRANSCRIPT
        assert result["data"]["vapi"]["ended_reason"] == "customer-ended-call"
        assert (await rig.get(cid))["status"] == "completed"
        await rig.counts_check(cid)


REASONS = {  # endedReason -> the outcome dialwave records (every row and family of docs/carriers.md)
    "+12125558001": ("customer-ended-call", "answered"),
    "+12125558002": ("assistant-said-end-call-phrase", "answered"),
    "+12125558003": ("exceeded-max-duration", "answered"),
    "+12125558004": ("call.in-progress.error-transfer-failed", "answered"),
    "+12125558005": ("voicemail", "voicemail"),
    "+12125558006": ("customer-busy", "busy"),
    "+12125558007": ("customer-did-not-answer", "no_answer"),
    "+12125558008": ("call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable", "no_answer"),
    "+12125558009": ("twilio-failed-to-connect-call", "failed"),
    "+12125558010": ("twilio-reported-customer-misdialed", "failed"),
    "+12125558011": ("call.start.error-subscription-concurrency-limit-reached", "provider_error"),
    "+12125558012": ("pipeline-error-openai-llm-failed", "provider_error"),
    "+12125558013": ("call.in-progress.error-vapifault-worker-died", "provider_error"),
    "+12125558014": ("worker-shutdown", "provider_error"),
    "+12125558015": ("assistant-not-found", "provider_error"),
    "+12125558016": ("a-reason-vapi-adds-later", "provider_error"),
}
ANSWERING = {"answered", "voicemail"}


async def test_every_outcome_of_the_mapping_table(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(
            list(REASONS), callers=[pn], retry=NO_RETRIES, pacing={"max_concurrency": 20, "attempts_per_second": 50}
        )
        await rig.run(timedelta(seconds=2))
        assert len(fake.created) == len(REASONS)
        for number, (_, outcome) in REASONS.items():
            await fake.status(fake.id_for(number), "ringing")
            if outcome in ANSWERING:
                await fake.status(fake.id_for(number), "in-progress")
        await rig.run(timedelta(seconds=20))  # talking (engine time)
        for number, (reason, outcome) in REASONS.items():
            assert await fake.end(fake.id_for(number), reason, seconds=20 if outcome in ANSWERING else 0) == 204
        await rig.until_idle()
        calls = await by_number(rig, cid)
        assert {n: calls[n]["outcome"] for n in REASONS} == {n: o for n, (_, o) in REASONS.items()}
        assert all((calls[n]["answered_at"] is not None) == (o in ANSWERING) for n, (_, o) in REASONS.items())
        await rig.counts_check(cid)


async def test_a_wrong_or_missing_secret_is_refused_and_changes_nothing(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        vapi_id = fake.id_for(A)
        fake.calls[vapi_id]["status"] = "ended"
        report = {"type": "end-of-call-report", "endedReason": "customer-busy", "analysis": {}, "artifact": {}}
        assert await fake.send(vapi_id, report, headers={"X-Vapi-Secret": "not-the-secret-at-all"}) == 403
        assert await fake.send(vapi_id, report, headers={}) == 403
        assert await fake.send(vapi_id, report, headers={"Authorization": "Bearer not-the-secret"}) == 403
        call_id = (await by_number(rig, cid))[A]["id"]
        refused = await rig.api.client.post(f"/v1/carriers/vapi/events/{call_id}", json={"message": report})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "BAD_SIGNATURE"
        unknown = await rig.api.client.post("/v1/carriers/vapi/events/call_nope", json={"message": report})
        assert unknown.status_code == 404
        other = {"message": {**report, "call": {"id": "another-vapi-call"}}}
        mixed = await rig.api.client.post(
            f"/v1/carriers/vapi/events/{call_id}", json=other, headers={"X-Vapi-Secret": SECRET}
        )
        assert mixed.status_code == 404  # the report names another Vapi call than the one placed
        await rig.run(timedelta(seconds=5))
        call = (await by_number(rig, cid))[A]
        assert call["status"] == "dialing" and call["outcome"] is None  # nothing changed
        assert await fake.status(vapi_id, "in-progress") == 204  # the real one passes
        await rig.run(timedelta(seconds=1))
        assert (await by_number(rig, cid))[A]["status"] == "in_call"


async def test_a_bearer_token_credential_authenticates_instead_of_the_header(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db, vapi=vapi_settings(credential_id=CREDENTIAL)) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        call = (await by_number(rig, cid))[A]
        server = fake.created[0]["assistantOverrides"]["server"]
        assert server == {
            "url": f"{PUBLIC}/v1/carriers/vapi/events/{call['id']}",
            "timeoutSeconds": 20,
            "credentialId": CREDENTIAL,
        }
        vapi_id = fake.id_for(A)
        assert await fake.status(vapi_id, "in-progress") == 204  # Authorization: Bearer <secret>
        await rig.run(timedelta(seconds=30))
        assert await fake.end(vapi_id, "customer-ended-call", seconds=9) == 204
        await rig.until_idle()
        assert (await by_number(rig, cid))[A]["outcome"] == "answered"


async def test_a_call_ringing_past_the_timeout_is_ended_through_live_call_control(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, ring_timeout_seconds=20)
        await rig.run(timedelta(seconds=2))
        vapi_id = fake.id_for(A)
        await fake.status(vapi_id, "ringing")
        await rig.run(timedelta(seconds=30))
        assert fake.controls == [(vapi_id, {"type": "end-call"})]
        await fake.end(vapi_id, "manually-canceled")
        await rig.until_idle()
        assert (await by_number(rig, cid))[A]["outcome"] == "no_answer"


async def test_a_lost_report_is_asked_for_and_a_false_evaluation_is_no_conversion(db_url: str, db: Any) -> None:
    retry = {"max_attempts": 2, "on": {"no_conversion": {"enabled": True, "max_retries": 1, "interval_minutes": [60]}}}
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=retry, agent={"max_call_duration_seconds": 60})
        await rig.run(timedelta(seconds=2))
        vapi_id = fake.id_for(A)
        await fake.status(vapi_id, "in-progress")
        await rig.run(timedelta(seconds=10))
        await fake.end(vapi_id, "assistant-ended-call", success="false", seconds=30, report=False)  # lost
        await rig.run(timedelta(seconds=150))  # past 60 s + 60 s: the engine asks GET /call/{id}
        [call] = await rig.calls(cid)
        assert (call["outcome"], call["conversion"]) == ("answered", False)
        [lead] = await rig.leads(cid)
        assert lead["status"] == "retry_pending" and lead["last_outcome"] == "no_conversion"


async def test_refusals_are_provider_errors_and_a_429_holds_the_number(db_url: str, db: Any) -> None:
    retry = {"max_attempts": 2, "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}}}
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(429, {"Retry-After": "120"})]
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, pacing={"attempts_per_second": 1})
        start = rig.clock.now()
        await rig.run(timedelta(seconds=60))
        calls = await rig.calls(cid)
        assert [(c["to_number"], c["outcome"]) for c in calls] == [(A, "provider_error")]
        assert calls[0]["reason"].startswith("Vapi 429")
        held = {lead["phone_number"]: lead for lead in await rig.leads(cid)}[B]
        assert held["attempts"] == 0 and held["reason"] == "the carrier asked to wait (Retry-After)"
        await rig.run(timedelta(seconds=90))
        later = [c for c in await rig.calls(cid) if c["id"] != calls[0]["id"]]
        assert {c["to_number"] for c in later} == {A, B}
        assert all(c["started_at"] >= start + timedelta(seconds=120) for c in later)


async def test_a_429_without_retry_after_holds_the_number_30_seconds(db_url: str, db: Any) -> None:
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(429, {}), (400, {})]
        cid = await rig.campaign([A, B, C], callers=[pn], retry=NO_RETRIES, pacing={"attempts_per_second": 1})
        start = rig.clock.now()
        await rig.run(timedelta(seconds=20))
        assert [c["to_number"] for c in await rig.calls(cid)] == [A]
        await rig.run(timedelta(seconds=20))
        calls = await rig.calls(cid)
        assert [c["outcome"] for c in calls[:2]] == ["provider_error", "provider_error"]
        assert calls[1]["reason"] == "Vapi 400: bad request" and calls[1]["started_at"] >= start + timedelta(seconds=30)


async def test_the_numbers_max_concurrency_caps_calls_in_flight_at_vapi(db_url: str, db: Any) -> None:
    numbers = [f"+1212555900{i}" for i in range(5)]
    async with vapi_rig(db_url, db, max_concurrency=2) as (rig, fake, pn):
        cid = await rig.campaign(
            numbers, callers=[pn], retry=NO_RETRIES, pacing={"max_concurrency": 10, "attempts_per_second": 50}
        )
        await rig.run(timedelta(seconds=5))
        assert len(fake.created) == 2  # the number's Vapi concurrency, not the campaign's 20
        first = list(fake.calls)
        for vapi_id in first:
            await fake.end(vapi_id, "customer-busy")
        await rig.run(timedelta(seconds=5))
        assert len(fake.created) == 4
        for vapi_id in [i for i in fake.calls if i not in first]:
            await fake.end(vapi_id, "customer-busy")
        await rig.run(timedelta(seconds=5))
        assert len(fake.created) == 5
        await fake.end(next(i for i, c in fake.calls.items() if c["status"] != "ended"), "customer-busy")
        await rig.until_idle()
        assert (await rig.get(cid))["counts"]["failed"] == 5


async def test_after_a_restart_calls_are_asked_about_at_vapi_not_redialed(db_url: str, db: Any) -> None:
    retry = {"max_attempts": 2, "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}}}
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, pacing=FAST)
        await rig.run(timedelta(seconds=2))
        before = await by_number(rig, cid)
        await fake.status(fake.id_for(A), "in-progress")
        await rig.run(timedelta(seconds=1))
        # The process dies. Vapi still has A in progress; B's call is unknown there.
        await rig.engine.close()
        await rig.engine.carriers["vapi"].close()  # type: ignore[attr-defined]
        del fake.calls[fake.id_for(B)]
        fresh = VapiCarrier(rig.clock, PUBLIC, fake.base)
        rig.engine = Engine(db, {"simulated": rig.carrier, "vapi": fresh}, EngineSettings.virtual())
        rig.runner = VirtualRunner(rig.engine, rig.clock)
        rig.handle.engine = rig.engine
        try:
            await rig.run(timedelta(seconds=1))  # start-up reconciliation: GET /call/{id}
            after = await by_number(rig, cid)
            assert after[A]["status"] == "in_call"  # adopted, not redialed
            first_b = next(c for c in await rig.calls(cid) if c["id"] == before[B]["id"])
            assert first_b["outcome"] == "provider_error"
            assert first_b["reason"].startswith("the carrier never heard of this attempt")
            await rig.run(timedelta(seconds=20))
            assert await fake.end(fake.id_for(A), "customer-ended-call", summary="Adopted.") == 204
            await rig.run(timedelta(minutes=2))  # B's retry is due after 1 minute
            assert (await by_number(rig, cid))[A]["outcome"] == "answered"
            assert [c["attempt"] for c in await rig.calls(cid) if c["to_number"] == B] == [1, 2]
            assert [b["customer"]["number"] for b in fake.created].count(A) == 1  # A was placed once
        finally:
            await fresh.close()


async def test_the_campaigns_machine_detection_reaches_vapi_and_a_left_message_is_recorded(
    db_url: str, db: Any
) -> None:
    """Machine detection on: Vapi's voicemail detection, with the campaign's rendered message (said on a
    machine) or without one (Vapi hangs up); off: nothing is sent and the assistant's own setting stands."""
    leave = {"enabled": True, "on_voicemail": "leave_message", "voicemail_message": "Hi {{name}}, call us back."}
    async with vapi_rig(db_url, db) as (rig, fake, pn):
        cids = {
            A: await rig.campaign([A], callers=[pn], retry=NO_RETRIES, machine_detection=leave),
            B: await rig.campaign([B], callers=[pn], retry=NO_RETRIES, machine_detection={"enabled": True}),
            C: await rig.campaign([C], callers=[pn], retry=NO_RETRIES),
        }
        await rig.run(timedelta(seconds=2))
        sent = {b["customer"]["number"]: b["assistantOverrides"] for b in fake.created}
        assert sent[A]["voicemailDetection"] == {"provider": "vapi"}
        assert sent[A]["voicemailMessage"] == "Hi there, call us back."
        assert sent[B]["voicemailDetection"] == {"provider": "vapi"} and "voicemailMessage" not in sent[B]
        assert "voicemailDetection" not in sent[C] and "voicemailMessage" not in sent[C]
        for number in (A, B, C):
            await fake.status(fake.id_for(number), "in-progress")
        await rig.run(timedelta(seconds=15))
        for number in (A, B, C):
            assert await fake.end(fake.id_for(number), "voicemail", seconds=15) == 204
        await rig.until_idle()
        ended = {n: (await by_number(rig, cid))[n] for n, cid in cids.items()}
        assert {n: c["outcome"] for n, c in ended.items()} == dict.fromkeys((A, B, C), "voicemail")
        assert {n: c["voicemail_left"] for n, c in ended.items()} == {A: True, B: False, C: None}
