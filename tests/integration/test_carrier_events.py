"""Carrier webhooks handed between processes (services/carrier_events.py, engine/carrier_relay.py), on
SQLite and PostgreSQL: stored events are taken once, in order, only by the holder of their call, and the
relay applies them to the carrier holding the call; on PostgreSQL a notification wakes the relay at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from livekit.protocol.webhook import WebhookEvent

from dialwave.clock import VirtualClock
from dialwave.engine.carrier_relay import CarrierRelay
from dialwave.services import carrier_events as service
from dialwave.store.db import Database
from dialwave.telephony.base import Carrier
from dialwave.telephony.twilio import TwilioCarrier
from tests.conftest import T0

pytestmark = pytest.mark.asyncio


def form(status: str, **extra: str) -> dict[str, str]:
    return {"CallSid": "CA1", "CallStatus": status, **extra}


async def test_stored_events_are_taken_once_in_order_by_their_calls_holder(db: Database) -> None:
    for status in ("ringing", "in-progress", "completed"):
        await service.forward(db, "twilio", "call_a", form(status), T0)
    await service.forward(db, "telnyx", "call_b", {"data": {"event_type": "call.hangup"}}, T0)
    await service.forward(db, "twilio", "call_c", form("ringing"), T0 - timedelta(hours=2))
    taken = await service.take(db, ["call_a", "call_x"])
    assert [(r["provider"], r["payload"]["CallStatus"]) for r in taken] == [
        ("twilio", "ringing"),
        ("twilio", "in-progress"),
        ("twilio", "completed"),
    ]
    assert await service.take(db, ["call_a"]) == []  # each once
    assert [r["payload"] for r in await service.take(db, ["call_b"])] == [{"data": {"event_type": "call.hangup"}}]
    assert await service.drop_older(db, T0 - timedelta(hours=1)) == 1  # call_c's: nobody took it
    assert await service.take(db, ["call_c"]) == []


async def test_a_livekit_event_is_stored_as_the_protobufs_json_and_read_back_whole(db: Database) -> None:
    event = WebhookEvent(id="EV_1", event="participant_left")
    event.participant.identity = "callee"
    event.room.name = "dialwave-call_l"
    await service.forward(db, "livekit", "call_l", MessageToDict(event), T0)
    (row,) = await service.take(db, ["call_l"])
    assert ParseDict(row["payload"], WebhookEvent()) == event


async def test_the_relay_applies_a_stored_end_to_the_carrier_holding_the_call(db: Database) -> None:
    clock = VirtualClock(T0)
    twilio = TwilioCarrier(clock, "https://dialwave.example.com", "http://127.0.0.1:9")
    twilio.on_callback("call_a", form("ringing"))  # the carrier holds call_a (as after a dial)
    twilio.poll(clock.now())
    woken: list[int] = []
    carriers: dict[str, Carrier] = {"twilio": twilio}
    relay = CarrierRelay(db, carriers, lambda: woken.append(1), clock.now)
    await service.forward(db, "twilio", "call_a", form("completed", CallDuration="0"), T0)
    await service.forward(db, "twilio", "call_z", form("completed"), T0)  # a call another process holds
    assert await relay.once() == 1 and woken == [1]
    (ended,) = twilio.poll(clock.now())
    assert (ended.call_id, ended.kind, ended.outcome) == ("call_a", "ended", "no_answer")
    assert "call_a" not in twilio.tracks  # ended and handed over: a repeat finds nothing
    assert await relay.once() == 0
    assert [r["call_id"] for r in await service.take(db, ["call_z"])] == ["call_z"]  # left for its holder
    await relay.close()


async def test_a_notification_wakes_the_relay_before_its_poll(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY: PostgreSQL (SQLite runs one process, which holds every call)")
    clock = VirtualClock(T0)
    twilio = TwilioCarrier(clock, "https://dialwave.example.com", "http://127.0.0.1:9")
    twilio.on_callback("call_a", form("ringing"))
    twilio.poll(clock.now())
    relay = CarrierRelay(db, {"twilio": twilio}, lambda: None, clock.now, poll_every=60)
    try:
        await relay._listening()  # as its run() does first, on its own connection
        await service.forward(db, "twilio", "call_a", form("busy"), T0)
        await asyncio.wait_for(relay.notified.wait(), 5)  # the notification, not the 60 s poll
        assert await relay.once() == 1
        assert [e.outcome for e in twilio.poll(clock.now())] == ["busy"]
    finally:
        await relay.close()
