"""An answered call whose end never comes (a BYE lost on the way, a callback never sent), at a carrier
that knows its calls only from what it was told (a SIP trunk: its status is the dialog as we last heard
of it): past the longest allowed call the engine hangs it up, so the call frees its line and the
campaign completes. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from dialwave.clock import Clock
from dialwave.engine.recovery import RING_GRACE
from dialwave.store.db import Database
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York


class LostEnd:
    """In the SIP carrier's place: answers every call at once and never hears of its end; says "in_call"
    while it holds the call (as the SIP carrier does); our hang-up ends it (as our BYE does)."""

    name = "sip"
    simulated = True

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.up: set[str] = set()
        self.queue: list[CallEvent] = []
        self.hangups: list[datetime] = []

    async def originate(self, request: DialRequest) -> str:
        now = self.clock.now()
        self.up.add(request.call_id)
        self.queue += [
            CallEvent(request.call_id, "answered", now, request.call_id, answered_by="human"),
            CallEvent(request.call_id, "agent_connected", now, request.call_id),
        ]
        return request.call_id

    async def hangup(self, call_id: str) -> None:
        if call_id in self.up:
            self.up.discard(call_id)
            self.hangups.append(self.clock.now())
            self.queue.append(CallEvent(call_id, "ended", self.clock.now(), call_id, outcome="answered", sip_code=200))

    def poll(self, now: datetime) -> list[CallEvent]:
        out, self.queue = self.queue, []
        return out

    def next_event_at(self) -> datetime | None:
        return self.clock.now() if self.queue else None

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        return CallStatus("in_call", call_id, ()) if call_id in self.up else None

    async def close(self) -> None:
        pass


L = TypeVar("L", bound=LostEnd)


async def one_call(db_url: str, db: Database, kind: type[L], number: str, **config: Any) -> tuple[L, Any, Any]:
    """One lead dialed through a carrier of `kind` (agents talk at most 300 s), an hour run: the carrier,
    the call, the campaign."""
    made: list[L] = []

    def factory(clock: Clock) -> L:
        made.append(kind(clock))
        return made[-1]

    async with make_rig(db_url, db, NOON, model(), carriers={"sip": factory}) as rig:
        pn = await rig.number(provider="sip", sip={"trunk_uri": "sip:127.0.0.1:5099"})
        cid = await rig.campaign([number], callers=[pn], agent={"max_call_duration_seconds": 300}, **config)
        await rig.run(timedelta(hours=1))
        (call,) = await rig.calls(cid)
        return made[0], call, await rig.get(cid)


async def test_an_answered_call_whose_end_is_lost_is_hung_up_after_the_longest_allowed_call(
    db_url: str, db: Database
) -> None:
    carrier, call, camp = await one_call(db_url, db, LostEnd, "+12125550191")
    assert carrier.hangups == [call["answered_at"] + timedelta(seconds=300 + 60)]  # longest call + 60 s
    assert (call["outcome"], call["ended_at"]) == ("answered", carrier.hangups[0])
    assert camp["status"] == "completed" and camp["counts"]["completed"] == 1


class AnsweredAsWeHungUp(LostEnd):
    """Rings until our hang-up at the ring timeout, which crosses the callee's answer and is lost: the
    call is answered then and goes on (until our next hang-up)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.crossed: list[datetime] = []

    async def originate(self, request: DialRequest) -> str:
        self.up.add(request.call_id)
        self.queue.append(CallEvent(request.call_id, "ringing", self.clock.now(), request.call_id))
        return request.call_id

    async def hangup(self, call_id: str) -> None:
        if not self.crossed:
            now = self.clock.now()
            self.crossed.append(now)
            self.queue += [
                CallEvent(call_id, "answered", now, call_id, answered_by="human"),
                CallEvent(call_id, "agent_connected", now, call_id),
            ]
            return
        await super().hangup(call_id)


async def test_a_call_answered_as_our_ring_timeout_hang_up_crossed_it_is_hung_up_again(
    db_url: str, db: Database
) -> None:
    carrier, call, camp = await one_call(db_url, db, AnsweredAsWeHungUp, "+12125550192", ring_timeout_seconds=30)
    (crossed,) = carrier.crossed
    assert crossed == call["started_at"] + timedelta(seconds=30) + RING_GRACE  # the ring timeout's hang-up, lost
    assert call["answered_at"] == crossed
    assert carrier.hangups == [crossed + timedelta(seconds=300 + 60)]  # hung up again past the longest call
    assert (call["outcome"], call["ended_at"]) == ("answered", carrier.hangups[0])
    assert camp["status"] == "completed"
