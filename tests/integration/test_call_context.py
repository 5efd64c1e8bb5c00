"""The call context an agent runtime fetches, and the per-call token that authorises it (SQLite and
PostgreSQL; the simulated carrier receives the token the way a real carrier would pass it on)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from dialwave.api.app import create_app
from dialwave.config import Settings
from dialwave.store.db import Database
from dialwave.webhooks.signing import new_secret
from tests.conftest import make_api
from tests.receiver import Receiver, free_port, serving
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
NY = ZoneInfo("America/New_York")
ADA, BOB = "+12125559001", "+12125559002"
AGENT = {
    "system_prompt": "You call {{name}} about {{topic}}.",
    "voice": "alloy",
    "language": "en-GB",
    "required_variables": ["topic"],
}


def token_of(rig: Rig, call_id: str) -> str:
    token = rig.carrier._calls[call_id].request.call_token  # what the carrier hands the runtime
    assert token is not None and token.startswith("dwct_")
    return token


async def context(rig: Rig, call_id: str, token: str) -> dict[str, object]:
    response = await rig.api.client.get(f"/v1/calls/{call_id}/context", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_the_context_renders_the_prompt_and_knows_a_returning_person(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        lead_extra = {ADA: {"variables": {"name": "Ada", "topic": "renewal"}}}
        first = await rig.campaign(
            [ADA], agent=AGENT, lead_extra=lead_extra, agent_overrides={"max_call_duration_seconds": 300}
        )
        await rig.until_idle()
        [call] = await rig.calls(first)
        got = await context(rig, call["id"], token_of(rig, call["id"]))
        assert got["system_prompt"] == "You call Ada about renewal."
        assert got["opening_message"] == "Hi Ada"
        assert got["variables"] == {"name": "Ada", "topic": "renewal"}
        assert (got["voice"], got["language"], got["max_call_duration_seconds"]) == ("alloy", "en-GB", 300)
        assert got["returning"] is False and got["short_term_summaries"] == []
        assert got["to_number"] == ADA and got["attempt"] == 1
        second = await rig.campaign([ADA], agent=AGENT, lead_extra=lead_extra)
        await rig.until_idle()
        [again] = await rig.calls(second)
        assert (await context(rig, again["id"], token_of(rig, again["id"])))["returning"] is True
        by_key = await rig.api.ok("get", f"/v1/calls/{again['id']}/context")  # an API key works too
        assert by_key["call_id"] == again["id"]


async def test_a_call_token_opens_its_own_call_only_and_expires(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        extra = {n: {"variables": {"name": n[-4:], "topic": "t"}} for n in (ADA, BOB)}
        cid = await rig.campaign([ADA, BOB], agent=AGENT, lead_extra=extra)
        await rig.until_idle()
        calls = {c["to_number"]: c["id"] for c in await rig.calls(cid)}
        ada_token = token_of(rig, calls[ADA])
        other = await rig.api.client.get(
            f"/v1/calls/{calls[BOB]}/context", headers={"Authorization": f"Bearer {ada_token}"}
        )
        assert other.status_code == 401 and other.json()["error"]["message"] == "this token is for another call"
        forged = ada_token[:-4] + ("AAAA" if not ada_token.endswith("AAAA") else "BBBB")
        response = await rig.api.client.get(
            f"/v1/calls/{calls[ADA]}/context", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401 and response.json()["error"]["code"] == "BAD_CALL_TOKEN"
        other_org = await make_api(rig.api.client, db, "someone-else")
        assert (await other_org.get(f"/v1/calls/{calls[ADA]}/context")).status_code == 404
        rig.clock.advance(timedelta(minutes=600 // 60 + 61))  # past the longest call (600 s) + 1 h
        expired = await rig.api.client.get(
            f"/v1/calls/{calls[ADA]}/context", headers={"Authorization": f"Bearer {ada_token}"}
        )
        assert expired.status_code == 401 and expired.json()["error"]["message"] == "this call token has expired"


async def post_result(rig: Rig, call_id: str, token: str, body: dict[str, object]) -> dict[str, object]:
    response = await rig.api.client.post(
        f"/v1/calls/{call_id}/result", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_results_are_idempotent_and_summaries_feed_later_contexts(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        summaries = []
        for i in range(3):
            cid = await rig.campaign(
                [ADA], agent=AGENT, lead_extra=extra, agent_overrides={"short_term_summaries_limit": 2}
            )
            await rig.until_idle()
            [call] = await rig.calls(cid)
            token = token_of(rig, call["id"])
            got = await context(rig, call["id"], token)
            assert got["short_term_summaries"] == summaries[::-1][:2]  # newest first, at most 2
            body = {"summary": f"call {i}: wants a quote", "disposition": "callback", "data": {"plan": "pro"}}
            first = await post_result(rig, call["id"], token, body)
            again = await post_result(rig, call["id"], token, body)
            assert first["summary"] == again["summary"] and again["data"] == {"plan": "pro"}
            assert first["created_at"] == again["created_at"]
            summaries.append(body["summary"])
            rig.clock.advance(timedelta(minutes=5))


async def test_an_opt_out_cancels_a_pending_retry_before_the_answer(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        retry = {"on": {"no_conversion": {"enabled": True, "max_retries": 3, "interval_minutes": [30]}}}
        rig.carrier.default = rig.carrier.default.model_copy(update={"conversion_rate": 0.0})
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, retry=retry)
        other = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, start=False, name="other")  # queued too
        await rig.run(timedelta(minutes=10))  # the call (up to 4 minutes) is over
        [lead] = await rig.leads(cid)
        assert lead["status"] == "retry_pending"  # answered, no conversion: retried in 30 minutes
        [call] = await rig.calls(cid)
        out = await rig.api.ok("post", f"/v1/calls/{call['id']}/result", json={"opted_out": True})  # an API key
        assert out["opted_out"] is True
        # before anything else runs: the number is on the DNC list and nothing is pending for it
        dnc = await rig.api.ok("get", "/v1/dnc", params={"phone_number": ADA})
        assert dnc["data"][0]["source"] == "opt_out"
        assert [lead["status"] for lead in await rig.leads(cid)] == ["skipped"]
        assert [lead["status"] for lead in await rig.leads(other)] == ["skipped"]
        await rig.run(timedelta(hours=2))
        assert len(await rig.calls(cid)) == 1  # the retry was never dialed
        await rig.counts_check(cid)
        await rig.counts_check(other)
        camp = await rig.get(cid)
        assert camp["counts"]["skipped"] == 1 and camp["counts"]["retry_pending"] == 0


NO_CONVERSION_RETRY = {"on": {"no_conversion": {"enabled": True, "max_retries": 1, "interval_minutes": [30]}}}
LONG_TALK = {"outcomes": {"answered": 1.0}, "talk_seconds": [300, 300], "ring_seconds": [2, 2], "conversion_rate": 1.0}


async def test_conversion_false_before_the_hang_up_decides_the_retry(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, retry=NO_CONVERSION_RETRY)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        assert call["status"] == "in_call"
        await post_result(rig, call["id"], token_of(rig, call["id"]), {"conversion": False})
        await rig.until_idle()
        first, second = await rig.calls(cid)
        assert (first["conversion"], first["outcome"]) == (False, "answered")  # the carrier said true
        assert second["attempt"] == 2 and second["started_at"] >= first["ended_at"] + timedelta(minutes=30)
        [lead] = await rig.leads(cid)
        assert lead["retries"] == {"no_conversion": 1}


async def test_conversion_false_after_the_hang_up_reopens_the_lead_once(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, **{**LONG_TALK, "talk_seconds": [20, 20]})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, retry=NO_CONVERSION_RETRY, auto_complete=False)
        await rig.run(timedelta(minutes=5))
        [call] = await rig.calls(cid)
        [lead] = await rig.leads(cid)
        assert call["status"] == "ended" and lead["status"] == "completed"
        token = token_of(rig, call["id"])
        await post_result(rig, call["id"], token, {"conversion": False})
        await post_result(rig, call["id"], token, {"conversion": False})  # again: no second retry
        [lead] = await rig.leads(cid)
        assert (lead["status"], lead["last_outcome"], lead["retries"]) == (
            "retry_pending",
            "no_conversion",
            {"no_conversion": 1},
        )
        await rig.counts_check(cid)
        await rig.run(timedelta(hours=1))
        assert [c["attempt"] for c in await rig.calls(cid)] == [1, 2]
        assert (await rig.calls(cid))[0]["conversion"] is False


NY_DAY = {"timezone": "America/New_York", "windows": [{"start": "09:00", "end": "20:00"}]}


@pytest.mark.parametrize("before_hang_up", [False, True])
async def test_a_callback_at_22_00_is_moved_into_the_next_window(
    db_url: str, db: Database, before_hang_up: bool
) -> None:
    talk = [300, 300] if before_hang_up else [20, 20]
    async with make_rig(db_url, db, START, model(seed=2, **{**LONG_TALK, "talk_seconds": talk})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}, "timezone": "America/New_York"}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, schedule=NY_DAY, auto_complete=False)
        await rig.run(timedelta(minutes=1 if before_hang_up else 5))
        [call] = await rig.calls(cid)
        assert call["status"] == ("in_call" if before_hang_up else "ended")
        ten_pm = datetime(2026, 3, 2, 22, 0, tzinfo=NY)
        out = await post_result(rig, call["id"], token_of(rig, call["id"]), {"callback_at": ten_pm.isoformat()})
        assert out["callback_at"] is not None
        await rig.run(timedelta(minutes=10))
        [lead] = await rig.leads(cid)
        assert lead["status"] == "retry_pending" and lead["reason"].startswith("callback requested")
        assert lead["next_attempt_at"] == datetime(2026, 3, 3, 9, 0, tzinfo=NY)  # 22:00 is outside 09-20
        await rig.run(timedelta(days=1))
        second = (await rig.calls(cid))[1]
        assert second["attempt"] == 2 and second["started_at"] >= datetime(2026, 3, 3, 9, 0, tzinfo=NY)


async def test_a_callback_counts_against_max_attempts(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, **{**LONG_TALK, "talk_seconds": [20, 20]})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, retry={"max_attempts": 1}, auto_complete=False)
        await rig.run(timedelta(minutes=5))
        [call] = await rig.calls(cid)
        later = (START + timedelta(hours=2)).isoformat()
        await post_result(rig, call["id"], token_of(rig, call["id"]), {"callback_at": later})
        [lead] = await rig.leads(cid)
        assert lead["status"] == "completed"  # its one attempt is used


async def test_the_simulated_carrier_plays_the_runtime_opt_outs_and_callbacks(db_url: str, db: Database) -> None:
    """The simulated carrier reports opt-outs and callbacks by its model, so simulations exercise the loop."""
    sim = {**LONG_TALK, "talk_seconds": [20, 20], "opt_out_rate": 0.3, "callback_rate": 0.3}
    async with make_rig(db_url, db, START, model(seed=5, **sim)) as rig:
        numbers = [f"+1212555{9100 + i:04d}" for i in range(40)]
        extra = {n: {"variables": {"name": "x", "topic": "t"}} for n in numbers}
        cid = await rig.campaign(numbers, agent=AGENT, lead_extra=extra, retry={"max_attempts": 3})
        await rig.until_idle()
        calls = await rig.calls(cid)
        opted = {c["to_number"] for c in calls if c["outcome"] == "opted_out"}
        called_back = {c["to_number"] for c in calls if c["attempt"] == 2}
        assert 5 <= len(opted) <= 25 and called_back
        dnc = {d["phone_number"]: d for d in (await rig.api.ok("get", "/v1/dnc", params={"limit": 500}))["data"]}
        assert set(dnc) == opted and {d["source"] for d in dnc.values()} == {"opt_out"}
        for number in opted:  # never called again after the opt-out
            mine = sorted((c["attempt"], c["outcome"]) for c in calls if c["to_number"] == number)
            assert mine[-1][1] == "opted_out"
        await rig.counts_check(cid)


async def test_the_context_is_pushed_signed_to_the_agents_webhook_with_a_working_token(
    db_url: str, db: Database
) -> None:
    """An agent with a context_webhook_url gets each answered call's context POSTed to it, signed with its
    secret (verified by standardwebhooks), carrying a token that opens that call's routes."""
    receiver, secret = Receiver(), new_secret()
    receiver.secrets = [secret]
    outcomes = {"answered": 0.5, "busy": 0.5}
    short = model(seed=4, outcomes=outcomes, talk_seconds=(20, 60))  # the tokens still serve when checked below
    async with (
        make_rig(db_url, db, START, short, allow_loopback=True) as rig,
        serving(receiver, free_port()) as url,
    ):
        agent = {**AGENT, "context_webhook_url": url, "context_webhook_secret": secret}
        numbers = [f"+1212555{9100 + i:04d}" for i in range(6)]
        extra = {n: {"variables": {"name": f"P{i}", "topic": "renewal"}} for i, n in enumerate(numbers)}
        cid = await rig.campaign(numbers, agent=agent, lead_extra=extra)
        await rig.run(timedelta(minutes=2))  # every first attempt has ended (busy ones wait for their retry)
        await asyncio.gather(*rig.engine.context_push.tasks)
        calls = await rig.calls(cid)
        answered = {c["id"] for c in calls if c["answered_at"]}
        assert answered and len(answered) < len(calls)
        pushed = {e["data"]["call_id"]: e for e in receiver.processed.values()}
        assert set(pushed) == answered and not receiver.rejected  # answered calls only, each once
        for call_id, envelope in pushed.items():
            assert envelope["type"] == "call.context" and envelope["id"] == f"ctx_{call_id}"
            data = dict(envelope["data"])
            token = data.pop("token")
            assert data == await context(rig, call_id, token)  # what a fetch returns, and the token opens it
            posted = await post_result(rig, call_id, token, {"disposition": "pushed"})
            assert posted["disposition"] == "pushed"
        shown = await rig.api.ok("get", f"/v1/agents/{(await rig.get(cid))['agent_id']}")
        assert shown["context_webhook_secret"] is None and shown["context_webhook_secret_set"] is True
        versions = await rig.api.ok("get", f"/v1/agents/{shown['id']}/versions")
        assert secret not in json.dumps(versions)


async def test_a_failing_context_webhook_is_tried_three_times_and_the_call_goes_on(db_url: str, db: Database) -> None:
    receiver, secret = Receiver(status=503), new_secret()
    receiver.secrets = [secret]
    async with (
        make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0}), allow_loopback=True) as rig,
        serving(receiver, free_port()) as url,
    ):
        rig.engine.context_push.waits = (0.0, 0.0)
        agent = {**AGENT, "context_webhook_url": url, "context_webhook_secret": secret}
        cid = await rig.campaign([ADA], agent=agent, lead_extra={ADA: {"variables": {"name": "Ada", "topic": "x"}}})
        await rig.until_idle()
        assert await asyncio.gather(*rig.engine.context_push.tasks) in ([], [False])
        [call] = await rig.calls(cid)
    assert call["outcome"] == "answered" and len(receiver.requests) == 3
    assert len(set(receiver.requests)) == 1  # the same webhook-id on every try


async def test_a_context_webhook_needs_a_secret_and_a_public_url(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START) as rig:
        body = {"name": "a", "context_webhook_url": "https://runtime.example.com/context"}
        refused = await rig.api.post("/v1/agents", json=body)
        assert refused.status_code == 422 and "context_webhook_secret" in refused.json()["error"]["fields"]
        private = {**body, "context_webhook_url": "https://10.0.0.7/context", "context_webhook_secret": new_secret()}
        refused = await rig.api.post("/v1/agents", json=private)
        assert refused.status_code == 422 and "context_webhook_url" in refused.json()["error"]["fields"]
        agent = await rig.api.ok("post", "/v1/agents", 201, json={"name": "b"})
        patch = {"context_webhook_url": "https://169.254.169.254/latest", "context_webhook_secret": new_secret()}
        refused = await rig.api.patch(f"/v1/agents/{agent['id']}", json=patch)
        assert refused.status_code == 422 and "context_webhook_url" in refused.json()["error"]["fields"]
        assert (await rig.api.ok("get", f"/v1/agents/{agent['id']}"))["version"] == agent["version"]  # nothing lost


@pytest.mark.parametrize("body", [{"conversion": False}, {"callback_at": "2026-03-02T17:30:00Z"}])
async def test_a_result_posted_to_another_process_during_the_call_still_decides(
    db_url: str, db: Database, body: dict[str, object]
) -> None:
    """With several workers, the result may reach an API process whose engine does not hold the call:
    it is stored, and the engine that ends the call applies it in the commit that ends the call."""
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, retry=NO_CONVERSION_RETRY, auto_complete=False)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        assert call["status"] == "in_call"
        other = create_app(Settings(database_url=db_url), db=db, clock=rig.clock)  # no engine of its own
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as client:
            headers = {"Authorization": f"Bearer {token_of(rig, call['id'])}"}
            posted = await client.post(f"/v1/calls/{call['id']}/result", json=body, headers=headers)
            assert posted.status_code == 200, posted.text
        await rig.run(timedelta(minutes=10))  # the call ends in the rig's engine
        [lead] = await rig.leads(cid)
        ended = (await rig.calls(cid))[0]
        assert ended["status"] == "ended" and lead["status"] == "retry_pending", (ended, lead)
        if "conversion" in body:
            assert ended["conversion"] is False and lead["retries"] == {"no_conversion": 1}
        else:
            assert lead["reason"].startswith("callback requested")
            assert lead["next_attempt_at"] == datetime(2026, 3, 2, 17, 30, tzinfo=UTC)
        await rig.counts_check(cid)
        await rig.run(timedelta(hours=3))
        assert [c["attempt"] for c in await rig.calls(cid)] == [1, 2]  # decided once: one more attempt


async def test_the_returning_and_summary_switches_shape_the_context(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        for i in range(2):  # two earlier answered calls, each with a summary
            cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra)
            await rig.until_idle()
            [call] = await rig.calls(cid)
            await post_result(rig, call["id"], token_of(rig, call["id"]), {"summary": f"call {i}"})
            rig.clock.advance(timedelta(minutes=5))

        async def context_with(**overrides: object) -> dict[str, object]:
            cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, agent_overrides=overrides)
            await rig.until_idle()
            [call] = await rig.calls(cid)
            rig.clock.advance(timedelta(minutes=5))
            return await context(rig, call["id"], token_of(rig, call["id"]))

        default = await context_with()
        assert default["returning"] is True and default["short_term_summaries"] == ["call 1", "call 0"]
        off = await context_with(use_returning_greeting=False, use_short_term_summaries=False)
        assert off["returning"] is False and off["short_term_summaries"] == []
        one = await context_with(short_term_summaries_limit=1)
        assert one["short_term_summaries"] == ["call 1"]


async def test_the_context_tells_the_runtime_what_to_do_with_a_machine(db_url: str, db: Database) -> None:
    machine = {"enabled": True, "on_voicemail": "leave_message", "voicemail_message": "Hi {{name}}, call us."}
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0})) as rig:
        extra = {ADA: {"variables": {"name": "Ada", "topic": "t"}}}
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra=extra, machine_detection=machine)
        await rig.until_idle()
        [call] = await rig.calls(cid)
        token = token_of(rig, call["id"])
        got = await context(rig, call["id"], token)
        assert got["machine_detection"] == {"enabled": True, "timeout_seconds": 30, "on_voicemail": "leave_message"}
        assert got["voicemail_message"] == "Hi Ada, call us."
        await post_result(rig, call["id"], token, {"disposition": "voicemail", "voicemail_left": True})
        assert (await rig.api.ok("get", f"/v1/calls/{call['id']}"))["voicemail_left"] is True


async def test_a_calls_token_serves_a_short_grace_after_the_call_then_no_more(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(seed=2, outcomes={"answered": 1.0}, talk_seconds=(30, 30))) as rig:
        cid = await rig.campaign([ADA], agent=AGENT, lead_extra={ADA: {"variables": {"name": "Ada", "topic": "t"}}})
        await rig.until_idle()
        [call] = await rig.calls(cid)
        token = token_of(rig, call["id"])
        rig.clock.set(call["ended_at"] + timedelta(minutes=4))
        await post_result(rig, call["id"], token, {"disposition": "late but fine"})
        rig.clock.set(call["ended_at"] + timedelta(minutes=6))
        late = await rig.api.client.post(
            f"/v1/calls/{call['id']}/result", json={"opted_out": True}, headers={"Authorization": f"Bearer {token}"}
        )
        assert late.status_code == 401 and late.json()["error"]["code"] == "CALL_TOKEN_EXPIRED"
        shown = await rig.api.ok("get", f"/v1/calls/{call['id']}")
        assert shown["result"]["opted_out"] is False and shown["result"]["disposition"] == "late but fine"
