"""What an ended call changes: its call row, its lead (retry, completed or failed, by the campaign's
policy), the campaign's counters, an automatic DNC entry, and the events that say so. Everything goes
to the write buffer; the next group commit writes it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from dialwave.domain import lead_states as ls
from dialwave.domain.dialable import earliest, refusal_pause
from dialwave.domain.outcomes import Classified
from dialwave.domain.retry import Decision, callback, decide, final_status
from dialwave.engine.dial import Memory
from dialwave.engine.event_log import EventLog
from dialwave.engine.state import CampaignState, Live
from dialwave.engine.write_buffer import WriteBuffer
from dialwave.services.calls import EndedWith
from dialwave.telephony.base import CallEvent

RUNNING = ("active", "paused", "scheduled")


def _decision(camp: CampaignState | None, live: Live, classified: Classified, at: datetime) -> Decision:
    if camp is None or camp.status not in RUNNING:
        status = final_status(classified.reason)
        decision = decide(camp.config.retry, classified.reason, live.attempt, live.retries, at) if camp else None
        if decision is not None and decision.status == ls.RETRY_PENDING:
            return Decision(ls.CANCELLED, None, live.retries, "the campaign ended before this retry")
        return Decision(status, None, live.retries, "the campaign has ended")
    if live.callback_at is not None:
        asked = callback(camp.config.retry, live.attempt, live.retries, live.callback_at, at)
        if asked is not None:
            return asked
    return decide(camp.config.retry, classified.reason, live.attempt, live.retries, at)


def record_end(
    w: WriteBuffer,
    log: EventLog,
    memory: Memory,
    live: Live,
    event: CallEvent,
    classified: Classified,
    note: str | None,
    camp: CampaignState | None,
) -> None:
    at = event.at
    decision = _decision(camp, live, classified, at)
    status, why = decision.status, note or decision.why
    answered_at = live.answered_at
    assert ls.can_move(live.lead_status, status), (live.lead_status, status)
    next_at = earliest_at = None
    if status == ls.RETRY_PENDING and decision.retry_at is not None and camp is not None:
        earliest_at = decision.retry_at
        next_at = earliest(camp.times, live.to_number, live.lead_timezone, earliest_at, live.lead_region) or earliest_at
        if camp.due_known:
            camp.next_due = next_at if camp.next_due is None else min(camp.next_due, next_at)
    if answered_at is not None:
        talk = round(max((at - answered_at).total_seconds(), 0.0), 3)
        # a result this engine has not heard of yet is looked up at the commit
        w.ended_with[live.call_id] = EndedWith(live.org_id, event.conversion, live.callback_at)
    else:
        talk = 0.0
    if event.voicemail_left is not None:  # else the runtime may have said (POST .../result)
        w.call(live.call_id, voicemail_left=event.voicemail_left)
    w.call(
        live.call_id,
        status="ended",
        outcome=classified.outcome,
        conversion=event.conversion,
        ended_at=at,
        duration_seconds=talk,
        sip_code=event.sip_code,
        provider_call_id=live.provider_call_id or event.provider_call_id,
        reason=why,
    )
    final = status in ls.FINAL
    if event.conversion is False and refusal_pause(live.to_number, live.lead_region) is not None:
        memory.refused[(live.org_id, live.to_number)] = at  # a refusal: the number's rules pause it (France: 60 days)
    if live.org_id in memory.cooldown_orgs:
        key = (live.org_id, live.to_number)
        if answered_at is not None:
            memory.answered[key] = answered_at
        if status == ls.COMPLETED:
            memory.completed[key] = at
    w.lead(
        live.lead_id,
        status=status,
        last_outcome=classified.reason,
        retries=decision.retries,
        next_attempt_at=next_at,
        earliest_at=earliest_at,
        reason=why,
        finished_at=at if final else None,
        updated_at=at,
    )
    w.move(live.campaign_id, "in_progress", ls.counter(status))
    if live.org_id in log.listening:  # (else the log builds nothing: not even its arguments are)
        log.call_ended(
            live,
            at,
            outcome=classified.outcome,
            reason=classified.reason,
            sip_code=event.sip_code,
            conversion=event.conversion,
            duration=talk,
            voicemail_left=event.voicemail_left,
            lead_status=status,
            next_attempt_at=next_at,
            why=why,
        )
    if final or camp is None:
        w.finished.add(live.campaign_id)
    if camp is not None:
        trigger = _auto_dnc_trigger(camp.config.dnc.auto_add_on, classified, status)
        if trigger is not None:
            reason = f"added automatically: {trigger} (campaign {camp.id})"
            w.dnc.append((live.org_id, live.to_number, reason, camp.id, "auto"))
            memory.blocked.add((live.org_id, live.to_number))


def _auto_dnc_trigger(auto_add_on: Collection[str], classified: Classified, status: str) -> str | None:
    """What of this end puts the number on the DNC list by the campaign's dnc.auto_add_on (the first
    by name, if several): its outcome, its retry reason, or the lead's completion."""
    hit = None
    for trigger in (classified.outcome, classified.reason, "completed" if status == ls.COMPLETED else None):
        if trigger is not None and trigger in auto_add_on and (hit is None or trigger < hit):
            hit = trigger
    return hit
