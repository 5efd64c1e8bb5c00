"""The dispatcher: one `tick(now)` does everything due at `now`; `next_wake()` says when it next has work.

A tick (1) applies carrier events and starts reserved attempts whose slot has come, in time order;
(2) group-commits the buffered writes together with new claims in one transaction; (3) runs the
campaign lifecycle (scheduled starts, `end_at`, auto-complete). The same code runs under `dialwave
serve` (system clock, runner.RealtimeRunner) and in tests and `dialwave simulate` (virtual clock,
runner.VirtualRunner)."""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.handoff import handoff
from dialwave.domain.outcomes import PROVIDER_ERROR, classify
from dialwave.domain.phone import mask
from dialwave.engine import lifecycle
from dialwave.engine.claims import CallerLoad, ClaimContext, claim
from dialwave.engine.recovery import recover
from dialwave.engine.state import CampaignState, Live, Reservation, Writes
from dialwave.engine.writes import apply_end, flush
from dialwave.store.db import Database
from dialwave.store.repositories import dispatch as repo
from dialwave.store.repositories.campaigns import add_counts
from dialwave.telephony.base import CallEvent, Carrier, CarrierError, DialRequest

log = structlog.get_logger("dialwave.engine")
RING_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class EngineSettings:
    horizon: timedelta = timedelta(milliseconds=250)  # how far ahead a claim reserves pace slots
    flush_every: timedelta = timedelta(milliseconds=100)  # group commit period (engine time)
    flush_max: int = 2000  # ... or this many buffered row changes
    refresh_every: timedelta | None = timedelta(seconds=1)  # re-read campaigns (None: only when told)
    number_attempts_per_24h: int | None = None  # organization-wide cap per number, all campaigns


class Engine:
    def __init__(self, db: Database, carriers: dict[str, Carrier], settings: EngineSettings | None = None) -> None:
        self.db = db
        self.carriers = carriers
        self.settings = settings or EngineSettings()
        self.campaigns: dict[str, CampaignState] = {}
        self.reservations: list[Reservation] = []  # a heap by slot
        self.live: dict[str, Live] = {}
        self.ring_deadlines: list[tuple[datetime, str]] = []  # a heap: hang up calls ringing too long
        self.callers: dict[str, CallerLoad] = {}
        self.org_busy: dict[str, int] = {}
        self.org_caps: dict[str, int | None] = {}
        self.blocked: set[tuple[str, str]] = set()  # (org, number) put on the DNC list by an outcome
        self.writes = Writes()
        self.last_flush: datetime | None = None
        self.next_refresh: datetime | None = None
        self.lifecycle_at: datetime | None = None
        self.dirty = True  # campaigns must be re-read
        self.started = False
        self.stats = {"decisions": 0, "dialed": 0, "ended": 0, "flushes": 0}

    def invalidate(self, org_id: str | None = None, campaign_id: str | None = None) -> None:
        """A campaign's status or config, its leads, or the DNC list changed (the API calls this after
        committing). Reservations of the affected campaigns stop at once; the next tick re-reads them."""
        for camp in self.campaigns.values():
            if (campaign_id is None or camp.id == campaign_id) and (org_id is None or camp.org_id == org_id):
                camp.stale = True
        self.dirty = True

    # -- the tick ------------------------------------------------------------------------------
    async def tick(self, now: datetime) -> None:
        if not self.started:
            await lifecycle.refresh(self, now)
            await recover(self, now)
            self.started = True
        await self._run_due(now)
        refresh_due = self.next_refresh is not None and now >= self.next_refresh
        lifecycle_due = self.lifecycle_at is not None and now >= self.lifecycle_at
        if self.dirty or refresh_due or lifecycle_due:
            await self._write(now, lambda conn: flush(self, conn, now))
            await lifecycle.refresh(self, now)
            self.dirty = False
            if self.settings.refresh_every is not None:
                self.next_refresh = now + self.settings.refresh_every
        if self._wants_claim(now):
            await self._claim(now)
            await self._run_due(now)
        if self._flush_due(now) or self.writes.finished:
            await self._write(now, lambda conn: flush(self, conn, now))
        if self.writes.finished:
            await lifecycle.check_done(self, now)

    def next_wake(self) -> datetime | None:
        """When this engine next has something to do (carrier events aside)."""
        times = [self.reservations[0].slot] if self.reservations else []
        if self.ring_deadlines:
            times.append(self.ring_deadlines[0][0])
        for camp in self.campaigns.values():
            if camp.status == "active" and camp.due_known and camp.next_due is not None and camp.free > 0:
                times.append(camp.pacer.next_slot(camp.next_due))
        if not self.writes.empty and self.last_flush is not None:
            times.append(self.last_flush + self.settings.flush_every)
        times.extend(t for t in (self.next_refresh, self.lifecycle_at) if t is not None)
        return min(times) if times else None

    async def flush_now(self, now: datetime) -> None:
        await self._write(now, lambda conn: flush(self, conn, now))
        if self.writes.finished:
            await lifecycle.check_done(self, now)

    # -- events and slots, in time order -----------------------------------------------------------
    async def _run_due(self, now: datetime) -> None:
        events: list[CallEvent] = []
        for carrier in self.carriers.values():
            events.extend(carrier.poll(now))
        events.sort(key=lambda e: e.at)
        i = 0
        while True:
            slot = self.reservations[0].slot if self.reservations else None
            if slot is not None and slot > now:
                slot = None
            event = events[i] if i < len(events) else None
            if event is None and slot is None:
                break
            if event is not None and (slot is None or event.at <= slot):
                self.on_event(event)
                i += 1
            else:
                await self._start(heapq.heappop(self.reservations), now)
        while self.ring_deadlines and self.ring_deadlines[0][0] <= now:
            _, call_id = heapq.heappop(self.ring_deadlines)
            live = self.live.get(call_id)
            if live is not None and live.answered_at is None:
                hanging = self._carrier_of(live.campaign_id, live.caller_id)
                if hanging is not None:
                    await hanging.hangup(call_id)  # its "ended" event (no_answer) follows

    def _carrier_of(self, campaign_id: str, caller_id: str) -> Carrier | None:
        camp = self.campaigns.get(campaign_id)
        number = camp.numbers.get(caller_id) if camp is not None else None
        return self.carriers.get(number["provider"] if number is not None else "simulated")

    async def _start(self, r: Reservation, now: datetime) -> None:
        camp = self.campaigns.get(r.campaign_id)
        self.callers[r.caller.phone_number_id].busy -= 1
        if camp is not None:
            camp.reserved -= 1
        if camp is None or camp.stale or camp.status != "active" or (r.org_id, r.lead["phone_number"]) in self.blocked:
            self.release(r, now)
            return
        number = camp.numbers.get(r.caller.phone_number_id)
        provider = number["provider"] if number is not None else "simulated"
        given = handoff(camp.agent, camp.config, r.lead["variables"] or {}, r.lead.get("agent_overrides"))
        request = DialRequest(
            call_id=r.call_id,
            organization_id=r.org_id,
            campaign_id=r.campaign_id,
            lead_id=r.lead["id"],
            attempt=r.attempt,
            from_number=r.caller.number,
            to_number=r.lead["phone_number"],
            caller_id=r.caller.phone_number_id,
            at=r.slot,
            ring_timeout_seconds=camp.config.ring_timeout_seconds,
            machine_detection=camp.config.machine_detection.enabled,
            system_prompt=given.system_prompt,
            opening_message=given.opening_message,
            variables=given.variables,
            agent_id=camp.config.agent_id,
            agent_version=camp.agent_version,
            carrier_settings=dict(number["config"]) if number is not None else {},
        )
        live = Live(
            call_id=r.call_id,
            campaign_id=r.campaign_id,
            org_id=r.org_id,
            lead_id=r.lead["id"],
            to_number=r.lead["phone_number"],
            lead_timezone=r.lead["timezone"],
            attempt=r.attempt,
            caller_id=r.caller.phone_number_id,
            started_at=r.slot,
            retries=dict(r.lead.get("retries") or {}),
            ring_timeout=timedelta(seconds=camp.config.ring_timeout_seconds),
        )
        self.track(live, +1)
        self.stats["dialed"] += 1
        self.writes.call(r.call_id, status="dialing")
        heapq.heappush(self.ring_deadlines, (r.slot + live.ring_timeout + RING_GRACE, r.call_id))
        carrier = self.carriers.get(provider)
        if carrier is None:
            self.end(live, CallEvent(r.call_id, "ended", now, outcome=PROVIDER_ERROR), f"no carrier for {provider}")
            return
        try:
            live.provider_call_id = await carrier.originate(request)
        except CarrierError as exc:
            log.warning("originate failed", call_id=r.call_id, to=mask(live.to_number), error=exc.message)
            self.end(live, CallEvent(r.call_id, "ended", now, outcome=PROVIDER_ERROR), exc.message)
            return
        self.writes.call(r.call_id, provider_call_id=live.provider_call_id)

    def release(self, r: Reservation, now: datetime) -> None:
        """A reservation that will not be dialed: its lead goes back as it was, no attempt counted."""
        self.writes.released_calls.append(r.call_id)
        self.writes.lead(
            r.lead["id"],
            status=r.prior_status,
            attempts=r.attempt - 1,
            next_attempt_at=max(r.lead["next_attempt_at"] or now, now),
            updated_at=now,
        )
        self.writes.move(r.campaign_id, "in_progress", r.prior_status)
        camp = self.campaigns.get(r.campaign_id)
        if camp is not None:
            camp.due_known = False

    def track(self, live: Live, sign: int) -> None:
        if sign > 0:
            self.live[live.call_id] = live
        else:
            self.live.pop(live.call_id, None)
        camp = self.campaigns.get(live.campaign_id)
        if camp is not None:
            camp.in_flight += sign
        self.org_busy[live.org_id] = self.org_busy.get(live.org_id, 0) + sign
        self.callers.setdefault(live.caller_id, CallerLoad()).busy += sign

    def on_event(self, event: CallEvent) -> None:
        live = self.live.get(event.call_id)
        if live is None:
            return  # a duplicate, or a call already closed
        if event.provider_call_id and not live.provider_call_id:
            live.provider_call_id = event.provider_call_id
        if event.kind == "ringing":
            self.writes.call(live.call_id, status="ringing")
        elif event.kind == "answered":
            if live.answered_at is None:
                live.answered_at = event.at
                live.lead_status = ls.IN_CALL
                self.writes.call(live.call_id, status="in_call", answered_at=event.at)
                self.writes.lead(live.lead_id, status=ls.IN_CALL, updated_at=event.at)
        else:
            self.end(live, event, None)

    def end(self, live: Live, event: CallEvent, note: str | None) -> None:
        camp = self.campaigns.get(live.campaign_id)
        self.track(live, -1)
        self.stats["ended"] += 1
        threshold = camp.config.retry.on.short_duration.threshold_seconds if camp is not None else None
        talk = (event.at - live.answered_at).total_seconds() if live.answered_at else None
        classified = classify(event.outcome or PROVIDER_ERROR, talk, event.conversion, threshold)
        apply_end(self, live, event, classified, note, camp)

    # -- writes and claims ---------------------------------------------------------------------------
    def _flush_due(self, now: datetime) -> bool:
        if self.writes.empty:
            return False
        if len(self.writes) >= self.settings.flush_max or self.last_flush is None:
            return True
        return now - self.last_flush >= self.settings.flush_every

    async def _write(self, now: datetime, work: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        """Run `work(conn)` in one transaction; buffered writes survive a failed commit."""
        kept = self.writes
        try:
            async with self.db.write() as conn:
                await work(conn)
        except BaseException:
            self.writes = kept
            raise
        self.last_flush = now

    def _wants_claim(self, now: datetime) -> bool:
        for camp in self.campaigns.values():
            if camp.status != "active" or camp.stale or camp.free <= 0:
                continue
            due = not camp.due_known or (camp.next_due is not None and camp.next_due <= now)
            if due and camp.pacer.next_slot(now) <= now + self.settings.horizon:
                return True
        return False

    async def _claim(self, now: datetime) -> None:
        wanted = [c for c in self.campaigns.values() if c.status == "active" and not c.stale and c.free > 0]

        async def work(conn: AsyncConnection) -> None:
            await flush(self, conn, now)
            statuses = await repo.lock_campaigns(conn, [c.id for c in wanted])
            for camp in wanted:
                if statuses.get(camp.id) != "active":
                    camp.stale = True
                    self.dirty = True
                    continue
                if camp.due_known and (camp.next_due is None or camp.next_due > now):
                    continue
                await self._claim_one(conn, camp, now)

        await self._write(now, work)

    async def _claim_one(self, conn: AsyncConnection, camp: CampaignState, now: datetime) -> None:
        cap = self.org_caps.get(camp.org_id)
        org_free = None
        if cap is not None:
            reserved = sum(c.reserved for c in self.campaigns.values() if c.org_id == camp.org_id)
            org_free = cap - self.org_busy.get(camp.org_id, 0) - reserved
        ctx = ClaimContext(self.callers, org_free, self.settings.number_attempts_per_24h, self.settings.horizon)
        fresh: list[Reservation] = []
        deltas, decided = await claim(conn, camp, ctx, now, fresh)
        self.stats["decisions"] += decided
        for r in fresh:
            heapq.heappush(self.reservations, r)
        if any(deltas.values()):
            await add_counts(conn, camp.id, **deltas)
        camp.next_due = await repo.next_due_at(conn, camp.id)
        camp.due_known = True
        if camp.next_due is None and camp.in_flight == 0 and camp.reserved == 0:
            self.writes.finished.add(camp.id)
