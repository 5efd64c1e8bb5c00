"""The Retell carrier, on SQLite and PostgreSQL: the official SDK (retell-sdk) talks to a local fake of
Retell's documented API; the fake sends Retell's webhooks (call_started, call_ended, call_analyzed) to the
webhook URL dialwave put on the call, signed with the API key as Retell signs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.clock import Clock
from dialwave.telephony.retell import RetellCarrier
from tests.receiver import free_port, serving
from tests.retell_fake import AGENT, API_KEY, FakeRetell, sign
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC = "https://dialwave.example.com"
A, B = "+12125557001", "+12125557002"
NO_RETRIES = {"max_attempts": 1}
FAST = {"max_concurrency": 20, "attempts_per_second": 50}


@asynccontextmanager
async def retell_rig(db_url: str, db: Any, **number: Any) -> AsyncIterator[tuple[Rig, FakeRetell, str]]:
    fake = FakeRetell()
    async with serving(fake, free_port()) as url:  # type: ignore[arg-type]

        def carrier(clock: Clock) -> RetellCarrier:
            return RetellCarrier(clock, PUBLIC, url)

        async with make_rig(db_url, db, START, model(seed=1), carriers={"retell": carrier}) as rig:

            async def deliver(target: str, body: bytes, headers: dict[str, str]) -> int:
                assert target.startswith(PUBLIC)
                response = await rig.api.client.post(target.removeprefix(PUBLIC), content=body, headers=headers)
                return response.status_code

            fake.deliver = deliver
            settings = {"api_key": API_KEY, "agent_id": AGENT}
            body = {"number": "+12125550100", "provider": "retell", "retell": settings, **number}
            created = await rig.api.ok("post", "/v1/phone-numbers", 201, json=body)
            try:
                yield rig, fake, created["id"]
            finally:
                await rig.engine.carriers["retell"].close()  # type: ignore[attr-defined]


async def by_number(rig: Rig, cid: str) -> dict[str, dict[str, Any]]:
    return {c["to_number"]: c for c in await rig.calls(cid)}


async def test_the_call_carries_the_context_and_its_analysis_becomes_the_result(db_url: str, db: Any) -> None:
    async with retell_rig(db_url, db) as (rig, fake, pn):
        extra = {A: {"variables": {"plan": "gold", "seats": 3}}}
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES, lead_extra=extra)
        await rig.run(timedelta(seconds=2))
        [body] = fake.created
        call = (await by_number(rig, cid))[A]
        assert (body["from_number"], body["to_number"], body["override_agent_id"]) == ("+12125550100", A, AGENT)
        assert body["retell_llm_dynamic_variables"] == {"name": "there", "plan": "gold", "seats": "3"}
        meta = body["metadata"]
        assert meta["dialwave_call_id"] == call["id"] and meta["dialwave_lead_id"] == call["lead_id"]
        assert body["agent_override"] == {
            "agent": {
                "webhook_url": f"{PUBLIC}/v1/carriers/retell/events/{call['id']}",
                "webhook_events": ["call_started", "call_ended", "call_analyzed"],
            }
        }
        retell_id = fake.id_for(A)
        assert call["provider_call_id"] == retell_id
        context = await rig.api.client.get(
            f"/v1/calls/{call['id']}/context", headers={"Authorization": f"Bearer {meta['dialwave_token']}"}
        )
        assert context.status_code == 200 and context.json()["variables"] == {
            "name": "there",
            "plan": "gold",
            "seats": 3,
        }
        assert await fake.start(retell_id) == 204
        await rig.run(timedelta(seconds=45))
        assert (await by_number(rig, cid))[A]["status"] == "in_call"
        assert await fake.end(retell_id, "agent_hangup", seconds=45) == 204
        await rig.run(timedelta(seconds=2))
        assert await fake.analyze(retell_id, "Wants the gold plan.", successful=True) == 204
        await rig.until_idle()
        ended = (await by_number(rig, cid))[A]
        assert ended["outcome"] == "answered" and ended["duration_seconds"] == pytest.approx(45, abs=1)
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        assert shown["result"]["summary"] == "Wants the gold plan." and shown["result"]["conversion"] is True
        assert shown["result"]["data"]["retell"]["user_sentiment"] == "Positive"
        assert (await rig.get(cid))["status"] == "completed"


REASONS = {
    "+12125558001": ("user_hangup", "answered"),
    "+12125558002": ("agent_hangup", "answered"),
    "+12125558003": ("call_transfer", "answered"),
    "+12125558004": ("max_duration_reached", "answered"),
    "+12125558005": ("voicemail_reached", "voicemail"),
    "+12125558006": ("ivr_reached", "voicemail"),
    "+12125558007": ("dial_busy", "busy"),
    "+12125558008": ("dial_no_answer", "no_answer"),
    "+12125558009": ("dial_failed", "failed"),
    "+12125558010": ("invalid_destination", "failed"),
    "+12125558011": ("user_declined", "failed"),
    "+12125558012": ("telephony_provider_unavailable", "provider_error"),
    "+12125558013": ("concurrency_limit_reached", "provider_error"),
    "+12125558014": ("error_llm_websocket_open", "provider_error"),
    "+12125558015": ("user_requested_dnc", "opted_out"),
    "+12125558016": ("a_reason_retell_adds_later", "provider_error"),
}
ANSWERING = {"answered", "voicemail", "opted_out"}


async def test_every_outcome_of_the_mapping_table(db_url: str, db: Any) -> None:
    async with retell_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign(list(REASONS), callers=[pn], retry=NO_RETRIES, pacing=FAST)
        await rig.run(timedelta(seconds=2))
        assert len(fake.created) == len(REASONS)
        for number, (_, outcome) in REASONS.items():
            if outcome in ANSWERING:
                await fake.start(fake.id_for(number))
        await rig.run(timedelta(seconds=20))
        for number, (reason, outcome) in REASONS.items():
            assert await fake.end(fake.id_for(number), reason, seconds=20 if outcome in ANSWERING else 0) == 204
        await rig.until_idle()
        calls = await by_number(rig, cid)
        assert {n: calls[n]["outcome"] for n in REASONS} == {n: o for n, (_, o) in REASONS.items()}
        dnc = await rig.api.ok("get", "/v1/dnc")
        assert [e["phone_number"] for e in dnc["data"]] == ["+12125558015"]  # the opt-out, on the DNC list
        await rig.counts_check(cid)


async def test_a_bad_signature_is_refused_and_changes_nothing(db_url: str, db: Any) -> None:
    async with retell_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A], callers=[pn], retry=NO_RETRIES)
        await rig.run(timedelta(seconds=2))
        retell_id = fake.id_for(A)
        fake.calls[retell_id].update(call_status="not_connected", disconnection_reason="dial_busy")
        assert await fake.send(retell_id, "call_ended", key="key_someone_else") == 403
        assert await fake.send(retell_id, "call_ended", signature="v=1,d=" + "0" * 64) == 403
        stale = sign('{"event":"call_ended"}', at_ms=int(datetime.now(UTC).timestamp() * 1000) - 600_000)
        assert await fake.send(retell_id, "call_ended", signature=stale) == 403
        call_id = (await by_number(rig, cid))[A]["id"]
        unsigned = await rig.api.client.post(f"/v1/carriers/retell/events/{call_id}", json={"event": "call_ended"})
        assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "BAD_SIGNATURE"
        await rig.run(timedelta(seconds=5))
        assert (await by_number(rig, cid))[A]["status"] == "dialing"  # nothing changed
        assert await fake.send(retell_id, "call_ended") == 204
        await rig.until_idle()
        assert (await by_number(rig, cid))[A]["outcome"] == "busy"


async def test_a_late_unsuccessful_analysis_retries_as_no_conversion(db_url: str, db: Any) -> None:
    retry = {"max_attempts": 2, "on": {"no_conversion": {"enabled": True, "max_retries": 1, "interval_minutes": [60]}}}
    async with retell_rig(db_url, db) as (rig, fake, pn):
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, ring_timeout_seconds=60)
        await rig.run(timedelta(seconds=2))  # B rings on: the campaign is still running when A's analysis comes
        retell_id = fake.id_for(A)
        await fake.start(retell_id)
        await rig.run(timedelta(seconds=30))
        await fake.end(retell_id, "user_hangup", seconds=30)
        await rig.run(timedelta(seconds=5))  # the end is recorded; the analysis comes later
        assert await fake.analyze(retell_id, "Not interested right now.", successful=False) == 204
        await rig.run(timedelta(seconds=5))
        call = (await by_number(rig, cid))[A]
        assert (call["outcome"], call["conversion"]) == ("answered", False)
        lead = {lead["phone_number"]: lead for lead in await rig.leads(cid)}[A]
        assert lead["status"] == "retry_pending" and lead["last_outcome"] == "no_conversion"


async def test_ring_timeout_stop_lost_webhook_and_429(db_url: str, db: Any) -> None:
    retry = {"max_attempts": 2, "on": {"provider_error": {"enabled": True, "max_retries": 1, "interval_minutes": [1]}}}
    async with retell_rig(db_url, db) as (rig, fake, pn):
        fake.fail_next = [(429, {"Retry-After": "90"})]
        cid = await rig.campaign([A, B], callers=[pn], retry=retry, ring_timeout_seconds=20)
        start = rig.clock.now()
        await rig.run(timedelta(seconds=60))
        calls = await rig.calls(cid)
        assert [(c["to_number"], c["outcome"]) for c in calls] == [(A, "provider_error")]
        assert calls[0]["reason"].startswith("Retell 429")
        await rig.run(timedelta(seconds=35))  # the hold is over: B, then A's retry
        later = [c for c in await rig.calls(cid) if c["outcome"] is None]
        assert {c["to_number"] for c in later} == {A, B}
        assert all(c["started_at"] >= start + timedelta(seconds=90) for c in later)
        await rig.run(timedelta(seconds=30))  # both ring past 20 s: stop-call
        assert sorted(fake.stopped) == sorted(fake.calls)
        for retell_id in fake.calls:
            await fake.end(retell_id, "manual_stopped", webhook=False)  # ... and the webhooks are lost
        await rig.run(timedelta(seconds=90))  # asked with GET /v2/get-call
        done = {c["to_number"]: c["outcome"] for c in await rig.calls(cid) if c["attempt"] == 2 or c["to_number"] == B}
        assert done == {A: "no_answer", B: "no_answer"}


async def test_the_campaigns_machine_detection_reaches_retell_and_a_left_message_is_recorded(
    db_url: str, db: Any
) -> None:
    """Machine detection on: the call's agent override carries Retell's voicemail_option (say the
    campaign's rendered message, or hang up); off: no voicemail_option, the agent's own setting stands."""
    leave = {"enabled": True, "on_voicemail": "leave_message", "voicemail_message": "Hi {{name}}, call us back."}
    c = "+12125557003"
    async with retell_rig(db_url, db) as (rig, fake, pn):
        cids = {
            A: await rig.campaign([A], callers=[pn], retry=NO_RETRIES, machine_detection=leave),
            B: await rig.campaign([B], callers=[pn], retry=NO_RETRIES, machine_detection={"enabled": True}),
            c: await rig.campaign([c], callers=[pn], retry=NO_RETRIES),
        }
        await rig.run(timedelta(seconds=2))
        agent = {b["to_number"]: b["agent_override"]["agent"] for b in fake.created}
        assert agent[A]["voicemail_option"] == {"action": {"type": "static_text", "text": "Hi there, call us back."}}
        assert agent[B]["voicemail_option"] == {"action": {"type": "hangup"}}
        assert "voicemail_option" not in agent[c]
        ids = {b["to_number"]: fake.id_for(b["to_number"]) for b in fake.created}
        for number in (A, B, c):
            await fake.start(ids[number])
        await rig.run(timedelta(seconds=15))
        for number in (A, B, c):
            assert await fake.end(ids[number], "voicemail_reached", seconds=15) == 204
        await rig.until_idle()
        ended = {n: (await by_number(rig, cid))[n] for n, cid in cids.items()}
        assert {n: e["outcome"] for n, e in ended.items()} == dict.fromkeys((A, B, c), "voicemail")
        assert {n: e["voicemail_left"] for n, e in ended.items()} == {A: True, B: False, c: None}
