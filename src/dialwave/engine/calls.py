"""The calls between dial and hang-up: what each carrier event changes, the deadlines that watch them
(ring timeout, longest call), and what their end decides (through endings.record_end), including
the circuit breaker's count of provider errors in a row."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from dialwave.domain import lead_states as ls
from dialwave.domain.abandonment import is_abandoned
from dialwave.domain.outcomes import INTERNAL_ERROR, OPTED_OUT, PROVIDER_ERROR, classify
from dialwave.engine import lifecycle
from dialwave.engine.capacity import Capacity
from dialwave.engine.context_push import ContextPusher
from dialwave.engine.dial import Memory
from dialwave.engine.endings import record_end
from dialwave.engine.event_log import EventLog
from dialwave.engine.recovery import RING_GRACE, at_deadline, max_talk, passed_over
from dialwave.engine.state import CampaignState, Live, Reservation
from dialwave.engine.write_buffer import WriteBuffer
from dialwave.metrics import Metrics
from dialwave.telephony.base import CallEvent, Carrier

log = structlog.get_logger("dialwave.engine")


class Calls:
    def __init__(
        self,
        campaigns: Mapping[str, CampaignState],
        carriers: Mapping[str, Carrier],
        capacity: Capacity,
        writes: WriteBuffer,
        events: EventLog,
        memory: Memory,
        context_push: ContextPusher,
        breaker_failures: int,
        stats: dict[str, int],
        metrics: Metrics,
    ) -> None:
        self.campaigns, self.carriers, self.capacity = campaigns, carriers, capacity
        self.writes, self.events, self.memory, self.context_push = writes, events, memory, context_push
        self.breaker_failures = breaker_failures
        self.stats = stats
        self.metrics = metrics
        self.live: dict[str, Live] = {}
        self.deadlines: list[tuple[datetime, str]] = []  # a heap: ring timeouts and stuck-call checks
        self.tripped: dict[str, str] = {}  # campaign -> why its circuit breaker pauses it
        self.abandon_checks: set[str] = set()  # campaigns with a new abandoned call: is the rate over?

    def carrier_of(self, campaign_id: str, caller_id: str) -> Carrier | None:
        camp = self.campaigns.get(campaign_id)
        return self.carriers.get(camp.provider(caller_id) if camp is not None else "simulated")

    def in_flight(self, campaign_id: str) -> int:
        return sum(1 for live in self.live.values() if live.campaign_id == campaign_id)

    def track(self, live: Live, sign: int) -> None:
        """A call starts (+1) or ends (-1): it holds concurrency meanwhile."""
        if sign > 0:
            self.live[live.call_id] = live
        else:
            self.live.pop(live.call_id, None)
        self.capacity.track(live, sign, self.campaigns.get(live.campaign_id))

    def dialing(self, live: Live) -> None:
        """The call is about to be placed: it counts from now, and rings at most its ring timeout."""
        self.track(live, +1)
        self.metrics.count_attempt(live.campaign_id)
        self.events.call_started(live)
        self.writes.call(live.call_id, status="dialing", started_at=live.started_at)
        self.watch(live.call_id, live.started_at + live.ring_timeout + RING_GRACE)

    def watch(self, call_id: str, at: datetime) -> None:
        """Look at the call again at `at` (hang it up if still ringing, ask about it if stuck)."""
        heapq.heappush(self.deadlines, (at, call_id))

    def next_deadline(self) -> datetime | None:
        while self.deadlines and self.deadlines[0][1] not in self.live:
            heapq.heappop(self.deadlines)  # that call already ended
        return self.deadlines[0][0] if self.deadlines else None

    def deadline_due(self, now: datetime) -> bool:
        return bool(self.deadlines) and self.deadlines[0][0] <= now

    def pass_over_deadlines(self, now: datetime) -> bool:
        """Drop the deadlines due by `now` that run_deadlines would do nothing at (their call ended, or
        it was answered since: recovery.passed_over); False when one it acts on is due (left there)."""
        while self.deadline_due(now):
            live = self.live.get(self.deadlines[0][1])
            if live is not None and not passed_over(live, self.campaigns.get(live.campaign_id), now):
                return False
            heapq.heappop(self.deadlines)
        return True

    async def run_deadlines(self, now: datetime) -> None:
        """Hang up calls ringing too long; ask the carrier about stuck ones."""
        while self.deadline_due(now):
            _, call_id = heapq.heappop(self.deadlines)
            live = self.live.get(call_id)
            if live is not None:
                await at_deadline(self, self.campaigns.get(live.campaign_id), live, now)

    def on_event(self, event: CallEvent) -> None:
        live = self.live.get(event.call_id)
        if live is None:
            return  # a duplicate, or a call already closed
        if event.provider_call_id and not live.provider_call_id:
            live.provider_call_id = event.provider_call_id
        if event.kind == "ringing":
            if live.answered_at is None:  # a repeat after the answer (a status replay) changes nothing
                self.writes.call(live.call_id, status="ringing")
        elif event.kind == "answered":
            if live.answered_at is None:
                live.answered_at = event.at
                live.answered_by = event.answered_by
                self.writes.call(live.call_id, status="in_call", answered_at=event.at)
                self.writes.lead(live.lead_id, status=ls.IN_CALL, updated_at=event.at)
                self.events.call_answered(live, event.at)
                camp = self.campaigns.get(live.campaign_id)
                if camp is not None:
                    self.context_push.answered(camp, live, event.at)
                self.watch(live.call_id, event.at + max_talk(camp))
        elif event.kind == "agent_connected":
            if live.agent_connected_at is None:
                live.agent_connected_at = event.at
                self.writes.call(live.call_id, agent_connected_at=event.at)
        else:
            self.end(live, event, None)

    def note_result(self, call_id: str, conversion: bool | None, callback_at: datetime | None = None) -> bool:
        """The runtime posted a result while the call is still up: its conversion and callback decide
        what follows when the call ends. False if the call is not held here."""
        live = self.live.get(call_id)
        if live is None:
            return False
        if conversion is not None:
            live.conversion = conversion
        if callback_at is not None:
            live.callback_at = callback_at
        return True

    def end(self, live: Live, event: CallEvent, note: str | None, *, breaker: bool = True) -> None:
        """The call ended: its lead, counters and events follow. `breaker`: a provider or internal error
        counts toward the campaign's circuit breaker (not when recovery closes calls a dead process left)."""
        if live.conversion is not None:  # the runtime's result knows the conversation better than the carrier
            event = replace(event, conversion=live.conversion)
        if event.callback_at is not None and live.callback_at is None:
            live.callback_at = event.callback_at
        if event.opted_out:  # the person asked not to be called again: on the DNC list, nothing retried
            event = replace(event, outcome=OPTED_OUT)
            reason = f"opted out on call {live.call_id}"
            self.writes.dnc.append((live.org_id, live.to_number, reason, live.campaign_id, "opt_out"))
            self.memory.blocked.add((live.org_id, live.to_number))
        camp = self.campaigns.get(live.campaign_id)
        self.track(live, -1)
        self.stats["ended"] += 1
        answered_at = live.answered_at
        if answered_at is not None:
            talk: float | None = (event.at - answered_at).total_seconds()
            threshold = camp.config.retry.on.short_duration.threshold_seconds if camp is not None else None
        else:
            talk = threshold = None  # (what classify reads of an answered call only)
        classified = classify(event.outcome or PROVIDER_ERROR, talk, event.conversion, threshold)
        record_end(self.writes, self.events, self.memory, live, event, classified, note, camp)
        self.metrics.count_outcome(live.campaign_id, classified.outcome)
        # (a call nobody answered is never abandoned: not asked)
        if camp is not None and answered_at is not None and self._abandoned(live, event, classified.outcome, camp):
            self.writes.call(live.call_id, abandoned=True)
            self.memory.abandon((live.org_id, live.to_number), event.at)
            if camp.config.compliance.max_abandon_rate is not None:
                self.abandon_checks.add(camp.id)
        if camp is not None and breaker:
            failed = classified.outcome in (PROVIDER_ERROR, INTERNAL_ERROR)
            trip = lifecycle.count_failure(camp, failed, self.breaker_failures, note)
            if trip is not None and camp.id not in self.tripped:
                self.tripped[camp.id] = trip

    @staticmethod
    def _abandoned(live: Live, event: CallEvent, outcome: str, camp: CampaignState) -> bool:
        after = camp.config.compliance.abandon_after_seconds
        machine = live.answered_by == "machine"
        return is_abandoned(live.answered_at, live.agent_connected_at, event.at, outcome, after, machine=machine)

    def apply(self, event: CallEvent, now: datetime) -> None:
        """Apply one carrier event; if that fails, end its call as internal_error (other calls go on)."""
        try:
            self.on_event(event)
        except Exception:
            log.exception("a call event failed: the call ends as internal_error", call_id=event.call_id)
            live = self.live.get(event.call_id)
            if live is not None:
                self.fail(live, now)

    def start_failed(self, r: Reservation, camp: CampaignState | None, now: datetime) -> None:
        """Starting an attempt failed on our side: it ends as internal_error (retried by its rule),
        whether or not it reached the carrier."""
        log.exception("starting a call failed: it ends as internal_error", call_id=r.call_id)
        live = self.live.get(r.call_id)
        if live is None:
            live = live_of(r, camp, None)
            self.dialing(live)
        self.fail(live, now)

    def fail(self, live: Live, now: datetime) -> None:
        try:
            self.end(live, CallEvent(live.call_id, "ended", now, outcome=INTERNAL_ERROR), "internal error")
        except Exception:  # even the end cannot be recorded: free the line at least
            log.exception("ending a failed call failed", call_id=live.call_id)
            self.track(live, -1)


def live_of(r: Reservation, camp: CampaignState | None, token: str | None) -> Live:
    """The call a reservation becomes when it is dialed."""
    lead = r.lead
    caller = r.caller
    ring = camp.config.ring_timeout_seconds if camp is not None else 30
    return Live(
        call_id=r.call_id,
        campaign_id=r.campaign_id,
        org_id=r.org_id,
        lead_id=lead.id,
        to_number=lead.phone_number,
        lead_timezone=lead.timezone,
        lead_region=lead.region,
        attempt=r.attempt,
        caller_id=caller.phone_number_id,
        started_at=r.slot,
        retries=dict(lead.retries),
        ring_timeout=timedelta(0, ring),  # (positional: no keyword dict per call)
        from_number=caller.number,
        call_token=token,
    )
