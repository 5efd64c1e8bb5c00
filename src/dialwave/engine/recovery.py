"""Calls whose end we did not hear of. At start-up (and when a campaign is taken over from a dead
worker), attempts that were in flight are asked about at their carrier, never redialed: one the
carrier never heard of ends as provider_error and is retried by policy. During a run, a call still
ringing past its ring timeout is hung up, and one with no end long after it should have ended is
asked about (and hung up if its carrier says it goes on), so a lost callback never holds a
concurrency slot forever."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from dialwave.domain.outcomes import PROVIDER_ERROR
from dialwave.engine.dial import carrier_settings
from dialwave.engine.state import CampaignState, Live
from dialwave.errors import CarrierError
from dialwave.store.db import Database
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.telephony.base import CallEvent, Carrier

log = structlog.get_logger("dialwave.engine")
RING_GRACE = timedelta(seconds=5)  # a call still ringing this long past its ring timeout is hung up
STUCK_AFTER = timedelta(seconds=60)  # no "ended" this long after our hang-up or the longest allowed call


class CallBook(Protocol):
    """What recovery needs of the dispatcher: its calls in flight and the four things it does with them."""

    @property
    def live(self) -> Mapping[str, Live]: ...

    def carrier_of(self, campaign_id: str, caller_id: str) -> Carrier | None: ...

    def track(self, live: Live, sign: int) -> None: ...

    def on_event(self, event: CallEvent) -> None: ...

    def watch(self, call_id: str, at: datetime) -> None: ...

    def end(self, live: Live, event: CallEvent, note: str | None, *, breaker: bool = True) -> None: ...


async def recover(
    book: CallBook, db: Database, campaigns: Mapping[str, CampaignState], now: datetime, campaign_ids: set[str]
) -> int:
    """Adopt or close every call of these campaigns that the database shows in flight and the book
    does not hold (left by a stopped or dead worker); returns how many."""
    async with db.read() as conn:
        calls = [c for c in await call_repo.live_calls(conn, sorted(campaign_ids)) if c["id"] not in book.live]
        leads = await lead_repo.lead_rows(conn, [c["lead_id"] for c in calls])
    for call in calls:
        lead = leads.get(call["lead_id"])
        camp = campaigns.get(call["campaign_id"])
        live = Live(
            call_id=call["id"],
            campaign_id=call["campaign_id"],
            org_id=call["organization_id"],
            lead_id=call["lead_id"],
            to_number=call["to_number"],
            lead_timezone=lead.timezone if lead else None,
            lead_region=lead.region if lead else None,
            attempt=call["attempt"],
            caller_id=call["caller_id"] or "",
            started_at=call["started_at"] or now,
            retries=dict(lead.retries) if lead else {},
            answered_at=call["answered_at"],
            agent_connected_at=call["agent_connected_at"],
            provider_call_id=call["provider_call_id"],
            ring_timeout=timedelta(seconds=camp.config.ring_timeout_seconds if camp else 30),
        )
        book.track(live, +1)
        carrier = book.carrier_of(call["campaign_id"], call["caller_id"] or "")
        number = camp.numbers.get(call["caller_id"] or "") if camp is not None else None
        settings = carrier_settings(camp, number) if camp is not None else {}
        status = await carrier.status(call["id"], call["provider_call_id"], settings) if carrier is not None else None
        if status is None:
            log.warning("in-doubt attempt unknown to its carrier: provider_error", call_id=call["id"])
            book.end(  # a restart's leftovers, not a failing carrier: the breaker does not count them
                live,
                CallEvent(call["id"], "ended", now, outcome=PROVIDER_ERROR),
                "the carrier never heard of this attempt",
                breaker=False,
            )
            continue
        live.provider_call_id = status.provider_call_id or live.provider_call_id
        for event in status.events:
            book.on_event(event)
        if live.call_id in book.live:  # adopted: its deadlines are watched as a new call's are
            ring_end = live.started_at + live.ring_timeout + RING_GRACE
            book.watch(live.call_id, ring_end if live.answered_at is None else live.answered_at + max_talk(camp))
    if calls:
        log.info("recovered in-flight attempts", count=len(calls))
    return len(calls)


def passed_over(live: Live, camp: CampaignState | None, now: datetime) -> bool:
    """A deadline of an answered call within its longest allowed duration: an older deadline of a call
    answered since (its ring timeout), nothing to do at it."""
    return live.answered_at is not None and now < live.answered_at + max_talk(camp)


def max_talk(camp: CampaignState | None) -> timedelta:
    """How long an answered call may last before we ask the carrier whether it still exists."""
    seconds = camp.max_call_seconds if camp is not None else 600
    return timedelta(0, seconds) + STUCK_AFTER  # (days, seconds): no keywords to parse, once per answer


async def at_deadline(book: CallBook, camp: CampaignState | None, live: Live, now: datetime) -> None:
    """A call reached a deadline: still ringing past the ring timeout -> hang up (its "ended" follows);
    already hung up, or answered past its longest allowed duration, and still no "ended" -> ask the
    carrier (an answered call it says goes on is hung up). `book.watch` schedules the next look at the
    call (before asking the carrier, which may fail)."""
    carrier = book.carrier_of(live.campaign_id, live.caller_id)
    if carrier is None:
        return
    if live.answered_at is None and not live.hung_up:
        live.hung_up = True
        book.watch(live.call_id, now + STUCK_AFTER)
        try:
            await carrier.hangup(live.call_id)
        except CarrierError as exc:
            log.warning("hangup failed: the call will be asked about", call_id=live.call_id, error=exc.message)
        return
    if passed_over(live, camp, now):
        return
    number = camp.numbers.get(live.caller_id) if camp is not None else None
    settings = carrier_settings(camp, number) if camp is not None else {}
    try:
        status = await carrier.status(live.call_id, live.provider_call_id, settings)
    except CarrierError as exc:
        log.warning("status of a stuck call failed: asking again later", call_id=live.call_id, error=exc.message)
        book.watch(live.call_id, now + STUCK_AFTER)
        return
    if status is None:
        book.end(live, CallEvent(live.call_id, "ended", now, outcome=PROVIDER_ERROR), "the carrier lost this attempt")
        return
    for event in status.events:
        book.on_event(event)
    if live.call_id not in book.live:
        return
    book.watch(live.call_id, now + STUCK_AFTER)  # the carrier says it goes on: look again later
    if live.answered_at is not None:
        # Past its longest allowed duration: hang it up, at every look while the carrier says it goes on
        # (a hang-up at the ring timeout that crossed the answer, or one that failed, is not the end). A
        # carrier that knows the call only from what it was told (a SIP trunk: the dialog as we last heard
        # of it) says "in call" for ever once an end is lost, which would hold the line, and keep the
        # campaign from completing, for ever.
        live.hung_up = True
        try:
            await carrier.hangup(live.call_id)
        except CarrierError as exc:
            log.warning("hangup of a call past its longest duration failed", call_id=live.call_id, error=exc.message)
