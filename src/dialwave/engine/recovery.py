"""Start-up reconciliation: attempts that were in flight when the last process stopped are asked
about at their carrier, never redialed. One the carrier never heard of ends as provider_error and is
retried by policy."""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from dialwave.domain.outcomes import PROVIDER_ERROR
from dialwave.engine.dial import carrier_settings
from dialwave.engine.state import Live
from dialwave.errors import CarrierError
from dialwave.store.repositories import dispatch as repo
from dialwave.telephony.base import CallEvent

if TYPE_CHECKING:
    from dialwave.engine.dispatcher import Engine

log = structlog.get_logger("dialwave.engine")


async def recover(engine: Engine, now: datetime, campaign_ids: set[str]) -> int:
    """Adopt or close every call of these campaigns that the database shows in flight and this engine
    does not track (left by a stopped or dead worker); returns how many."""
    async with engine.db.read() as conn:
        calls = [c for c in await repo.live_calls(conn, sorted(campaign_ids)) if c["id"] not in engine.live]
        leads = await repo.lead_rows(conn, [c["lead_id"] for c in calls])
    for call in calls:
        lead = leads.get(call["lead_id"])
        camp = engine.campaigns.get(call["campaign_id"])
        live = Live(
            call_id=call["id"],
            campaign_id=call["campaign_id"],
            org_id=call["organization_id"],
            lead_id=call["lead_id"],
            to_number=call["to_number"],
            lead_timezone=lead["timezone"] if lead else None,
            attempt=call["attempt"],
            caller_id=call["caller_id"] or "",
            started_at=call["started_at"] or now,
            retries=dict((lead["retries"] if lead else None) or {}),
            answered_at=call["answered_at"],
            provider_call_id=call["provider_call_id"],
            ring_timeout=timedelta(seconds=camp.config.ring_timeout_seconds if camp else 30),
        )
        engine.track(live, +1)
        carrier = engine.carrier_of(call["campaign_id"], call["caller_id"] or "")
        number = camp.numbers.get(call["caller_id"] or "") if camp is not None else None
        settings = carrier_settings(camp, number) if camp is not None else {}
        status = await carrier.status(call["id"], call["provider_call_id"], settings) if carrier is not None else None
        if status is None:
            log.warning("in-doubt attempt unknown to its carrier: provider_error", call_id=call["id"])
            engine.end(
                live,
                CallEvent(call["id"], "ended", now, outcome=PROVIDER_ERROR),
                "the carrier never heard of this attempt",
            )
            continue
        live.provider_call_id = status.provider_call_id or live.provider_call_id
        for event in status.events:
            engine.on_event(event)
    if calls:
        log.info("recovered in-flight attempts", count=len(calls))
    return len(calls)


STUCK_AFTER = timedelta(seconds=60)  # no "ended" this long after our hang-up or the longest allowed call


def max_talk(engine: Engine, live: Live) -> timedelta:
    """How long an answered call may last before we ask the carrier whether it still exists."""
    camp = engine.campaigns.get(live.campaign_id)
    return timedelta(seconds=camp.max_call_seconds if camp is not None else 600) + STUCK_AFTER


async def at_deadline(engine: Engine, live: Live, now: datetime) -> None:
    """A call reached a deadline: still ringing past the ring timeout -> hang up (its "ended" follows);
    already hung up, or answered past its longest allowed duration, and still no "ended" -> ask the carrier
    (a lost callback must not hold a concurrency slot forever)."""
    carrier = engine.carrier_of(live.campaign_id, live.caller_id)
    if carrier is None:
        return
    if live.answered_at is None and not live.hung_up:
        live.hung_up = True
        heapq.heappush(engine.ring_deadlines, (now + STUCK_AFTER, live.call_id))
        try:
            await carrier.hangup(live.call_id)
        except CarrierError as exc:
            log.warning("hangup failed: the call will be asked about", call_id=live.call_id, error=exc.message)
        return
    if live.answered_at is not None and now < live.answered_at + max_talk(engine, live):
        return  # an older deadline of a call answered since
    camp = engine.campaigns.get(live.campaign_id)
    number = camp.numbers.get(live.caller_id) if camp is not None else None
    settings = carrier_settings(camp, number) if camp is not None else {}
    try:
        status = await carrier.status(live.call_id, live.provider_call_id, settings)
    except CarrierError as exc:
        log.warning("status of a stuck call failed: asking again later", call_id=live.call_id, error=exc.message)
        heapq.heappush(engine.ring_deadlines, (now + STUCK_AFTER, live.call_id))
        return
    if status is None:
        engine.end(live, CallEvent(live.call_id, "ended", now, outcome=PROVIDER_ERROR), "the carrier lost this attempt")
        return
    for event in status.events:
        engine.on_event(event)
    if live.call_id in engine.live:  # the carrier says it goes on: look again later
        heapq.heappush(engine.ring_deadlines, (now + STUCK_AFTER, live.call_id))
