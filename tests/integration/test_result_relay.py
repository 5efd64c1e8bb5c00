"""The agent runtime's result posted to a process whose engine does not hold the call (an API-only
process, another worker's), on SQLite and PostgreSQL: the engine holding the call hears of it while the
call is up (engine/carrier_relay.py, a notice in carrier_events) and its end decides exactly as if the
result had reached the engine's own process: the call's conversion, the lead's decision, the automatic
DNC entry and the events. Without the notice, only the commit that ends the call looked the result up,
after the end had decided without it (a `lead.completed` for a lead retried, a callback put on the DNC
list by `auto_add_on: completed`, a conversion true never on the call)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dialwave.api.app import create_app
from dialwave.config import Settings
from dialwave.engine.carrier_relay import CarrierRelay
from dialwave.services import carrier_events
from dialwave.store.db import Database
from dialwave.store.tables import carrier_events as carrier_events_table
from dialwave.store.tables import events
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
HERE, THERE = "+12125559001", "+12125559002"  # the result posted to the engine's process / to another one
LONG_TALK = {"outcomes": {"answered": 1.0}, "talk_seconds": [300, 300], "ring_seconds": [2, 2], "conversion_rate": 1.0}
RETRY = {"max_attempts": 3, "on": {"no_conversion": {"enabled": True, "max_retries": 1, "interval_minutes": [30]}}}
CALLBACK = "2026-03-02T17:30:00Z"
CASES = {  # the result, the automatic DNC triggers its end meets, and the conversion the carrier reports
    "conversion false": ({"conversion": False}, ["opted_out", "no_conversion"], 1.0),
    "callback": ({"callback_at": CALLBACK}, ["opted_out", "completed"], 1.0),
    "conversion true": ({"conversion": True}, ["opted_out", "no_conversion"], 0.0),
}


def token_of(rig: Rig, call_id: str) -> str:
    token = rig.carrier._calls[call_id].request.call_token
    assert token is not None
    return token


async def post(client: httpx.AsyncClient, rig: Rig, call_id: str, body: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {token_of(rig, call_id)}"}
    response = await client.post(f"/v1/calls/{call_id}/result", json=body, headers=headers)
    assert response.status_code == 200, response.text


async def what_followed(rig: Rig, campaign_id: str) -> dict[str, Any]:
    """The first call's end as its records show it, times relative to the call's end."""
    first, *later = await rig.calls(campaign_id)
    [lead] = await rig.leads(campaign_id)
    ended = first["ended_at"]
    async with rig.db.read() as conn:
        rows = (await conn.execute(sa.select(events).where(events.c.campaign_id == campaign_id))).mappings().all()
    envelopes = [json.loads(r["payload"]) for r in rows]
    types = sorted(e["type"] for e in envelopes if e["type"].startswith(("call.ended", "lead.")))
    [end] = [e["data"] for e in envelopes if e["type"] == "call.ended" and e["data"]["call_id"] == first["id"]]
    dnc = await rig.api.ok("get", "/v1/dnc", params={"phone_number": first["to_number"]})
    return {
        "call": {k: first[k] for k in ("status", "outcome", "conversion", "reason")},
        "lead": {
            "status": lead["status"],
            "last_outcome": lead["last_outcome"],
            "retries": lead["retries"],
            "next_attempt_at": lead["next_attempt_at"] - ended if lead["next_attempt_at"] else None,
        },
        "call.ended": {k: end[k] for k in ("outcome", "reason", "conversion", "lead_status", "decision")},
        "events": [t for t in types if t != "call.ended"] + [f"call.ended x{types.count('call.ended')}"],
        "on_dnc": bool(dnc["data"]),
        "attempts": 1 + len(later),
    }


@pytest.mark.parametrize("case", list(CASES))
async def test_a_result_posted_to_another_process_decides_as_one_posted_to_the_engines_own(
    db_url: str, db: Database, case: str
) -> None:
    body, auto_dnc, rate = CASES[case]
    simulated = model(seed=2, **{**LONG_TALK, "conversion_rate": rate})
    async with make_rig(db_url, db, START, simulated, allow_loopback=True) as rig:
        await rig.api.ok("post", "/v1/webhook-endpoints", 201, json={"url": "http://127.0.0.1:9/hooks"})  # events
        config = {"retry": RETRY, "auto_complete": False, "dnc": {"auto_add_on": auto_dnc}}
        here = await rig.campaign([HERE], **config)
        there = await rig.campaign([THERE], **config)
        relay = CarrierRelay(db, rig.engine.carriers, lambda: None, rig.clock.now, calls=rig.engine.calls)
        await rig.run(timedelta(minutes=1))
        [call_here], [call_there] = await rig.calls(here), await rig.calls(there)
        assert call_here["status"] == call_there["status"] == "in_call"

        await post(rig.api.client, rig, call_here["id"], body)  # the engine's own process: noted at once
        other = create_app(Settings(database_url=db_url, rate_limit_per_second=0), db=db, clock=rig.clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as client:
            await post(client, rig, call_there["id"], body)  # an API-only process: stored, and a notice
        live = rig.engine.calls.live[call_there["id"]]
        assert (live.conversion, live.callback_at) == (None, None)  # the engine has not heard of it yet
        assert await relay.once() == 1  # the notice, as the relay's poll (or NOTIFY) takes it
        assert await relay.once() == 0  # once
        assert live.conversion == body.get("conversion")
        assert live.callback_at == (datetime.fromisoformat(CALLBACK) if "callback_at" in body else None)

        await rig.run(timedelta(minutes=15))  # the calls end
        followed = await what_followed(rig, there)
        assert followed == await what_followed(rig, here)
        await rig.counts_check(there)
        await rig.run(timedelta(hours=3))  # the retries or callbacks come
        later = await what_followed(rig, there)
        assert later == await what_followed(rig, here)
        await relay.close()

    if case == "conversion false":
        assert followed["call"]["conversion"] is False and followed["call.ended"]["lead_status"] == "retry_pending"
        assert followed["on_dnc"] and "lead.completed" not in followed["events"]
    elif case == "callback":
        assert not followed["on_dnc"] and later["attempts"] == 2  # called back, not put on the list first
        assert followed["call.ended"]["decision"].startswith("callback requested")
        assert "lead.completed" not in followed["events"]
    else:  # the runtime's word over the carrier's
        assert followed["call"]["conversion"] is True and followed["call.ended"]["conversion"] is True
        assert followed["lead"]["status"] == "completed" and not followed["on_dnc"] and later["attempts"] == 1


async def test_a_notice_for_a_call_not_held_waits_and_a_late_one_is_dropped(db_url: str, db: Database) -> None:
    """A notice is taken only by the engine holding its call; one nobody takes is dropped with the
    carriers' events after `keep`."""
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        cid = await rig.campaign([HERE], auto_complete=False)
        relay = CarrierRelay(db, rig.engine.carriers, lambda: None, rig.clock.now, calls=rig.engine.calls)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        await carrier_events.forward_result(db, "call_elsewhere", START)  # held by another engine
        assert await relay.once() == 0  # no result stored for the call held here, none taken for the other
        async with db.read() as conn:
            left = (await conn.execute(sa.select(carrier_events_table.c.call_id))).scalars().all()
        assert left == ["call_elsewhere"]
        assert await carrier_events.drop_older(db, START + timedelta(hours=2)) == 1
        assert call["status"] == "in_call"
        await relay.close()


async def test_a_result_changed_just_before_the_end_is_applied_by_the_commit_that_ends_the_call(
    db_url: str, db: Database
) -> None:
    """The engine heard of a first result (conversion true); a second one (conversion false) is stored
    and its notice not yet taken when the call ends: the end decided with the first, and the commit
    that records the end applies the second as a result posted after the hang-up would be, once."""
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        cid = await rig.campaign([THERE], retry=RETRY, auto_complete=False)
        relay = CarrierRelay(db, rig.engine.carriers, lambda: None, rig.clock.now, calls=rig.engine.calls)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        other = create_app(Settings(database_url=db_url, rate_limit_per_second=0), db=db, clock=rig.clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as client:
            await post(client, rig, call["id"], {"conversion": True})
            assert await relay.once() == 1 and rig.engine.calls.live[call["id"]].conversion is True
            await post(client, rig, call["id"], {"conversion": False})  # its notice waits: the call ends first
        await rig.run(timedelta(minutes=15))
        [ended] = await rig.calls(cid)
        [lead] = await rig.leads(cid)
        assert ended["status"] == "ended" and ended["conversion"] is False
        assert lead["status"] == "retry_pending" and lead["retries"] == {"no_conversion": 1}
        assert lead["next_attempt_at"] == ended["ended_at"] + timedelta(minutes=30)
        assert await relay.once() == 0  # the call is no longer held: the notice is left to expire
        await rig.counts_check(cid)
        await rig.run(timedelta(hours=3))
        assert [c["attempt"] for c in await rig.calls(cid)] == [1, 2]  # decided again once: one more attempt
        await relay.close()


async def test_a_result_the_end_decided_with_is_not_applied_again_by_the_commit(db_url: str, db: Database) -> None:
    """The commit that ends a call looks up every answered call's stored result: what the end already
    decided with (a callback heard while the call was up) does not reopen the lead a second time."""
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        cid = await rig.campaign([HERE], retry=RETRY, auto_complete=False)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        await post(rig.api.client, rig, call["id"], {"callback_at": CALLBACK, "conversion": False})
        await rig.run(timedelta(minutes=15))
        [lead] = await rig.leads(cid)
        assert lead["status"] == "retry_pending" and lead["reason"].startswith("callback requested")
        assert lead["retries"] == {} and lead["next_attempt_at"] == datetime.fromisoformat(CALLBACK)
        await rig.counts_check(cid)
        await rig.run(timedelta(hours=3))
        assert [c["attempt"] for c in await rig.calls(cid)] == [1, 2]


async def test_a_result_notice_wakes_the_relay_before_its_poll(db_url: str, db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY: PostgreSQL (on SQLite the relay polls)")
    async with make_rig(db_url, db, START, model(seed=2, **LONG_TALK)) as rig:
        cid = await rig.campaign([THERE], retry=RETRY, auto_complete=False)
        relay = CarrierRelay(db, {}, lambda: None, rig.clock.now, poll_every=60, calls=rig.engine.calls)
        await rig.run(timedelta(minutes=1))
        [call] = await rig.calls(cid)
        try:
            await relay._listening()  # as its run() does first, on its own connection
            other = create_app(Settings(database_url=db_url, rate_limit_per_second=0), db=db, clock=rig.clock)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as client:
                await post(client, rig, call["id"], {"callback_at": CALLBACK})
            await asyncio.wait_for(relay.notified.wait(), 5)  # the notification, not the 60 s poll
            assert await relay.once() == 1
            assert rig.engine.calls.live[call["id"]].callback_at == datetime.fromisoformat(CALLBACK)
        finally:
            await relay.close()
