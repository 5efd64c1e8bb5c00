"""Starting attempts: the guards right before the dial (`_check`), on PostgreSQL the grant of their
slots across workers (`_grant`, engine/slots.py), the carrier request (`_dial`), and the way back to
the queue for a claimed lead that is not dialed (`release`). A part of the Engine (dispatcher.py),
which holds the state these methods use."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.dialable import Caps, longest_window
from dialwave.domain.outcomes import PROVIDER_ERROR
from dialwave.domain.phone import mask
from dialwave.engine.calls import Calls, live_of
from dialwave.engine.capacity import Capacity
from dialwave.engine.dial import Memory, dial_request, recheck
from dialwave.engine.predial import RETRY_AFTER_ERROR_SECONDS
from dialwave.engine.settings import EngineSettings
from dialwave.engine.slots import Grant, SharedCaps
from dialwave.engine.state import CampaignState, Reservation
from dialwave.engine.write_buffer import WriteBuffer
from dialwave.errors import CarrierError
from dialwave.metrics import Metrics
from dialwave.telephony.base import CallEvent, Carrier

log = structlog.get_logger("dialwave.engine")


class Starts:
    """The Engine's start path (the Engine sets these attributes)."""

    campaigns: dict[str, CampaignState]
    carriers: dict[str, Carrier]
    settings: EngineSettings
    capacity: Capacity
    calls: Calls
    memory: Memory
    writes: WriteBuffer
    shared: SharedCaps | None
    clock: Callable[[], datetime] | None
    caller_holds: dict[str, datetime]
    token_key: bytes | None
    stats: dict[str, int]
    metrics: Metrics
    dirty: bool

    async def _write(self, now: datetime, work: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        raise NotImplementedError

    async def _flush(
        self, conn: AsyncConnection, now: datetime, *, sync: bool = False, calls: bool = True, leads: bool = True
    ) -> None:
        raise NotImplementedError

    async def _start_batch(self, batch: list[Reservation], now: datetime) -> None:
        ready: list[tuple[Reservation, CampaignState]] = []
        caps: dict[str, Caps] = {}  # call id -> the caps on attempts to its number, as `_check` found them
        for r in batch:
            try:
                camp = await self._check(r, now, caps)
            except Exception:  # a failure in one call's path ends that call, never the tick
                self.calls.start_failed(r, self.campaigns.get(r.campaign_id), now)
                continue
            if camp is not None:
                ready.append((r, camp))
        if self.shared is not None and ready:
            ready = await self._grant(ready, now)
        for r, camp in ready:
            try:
                await self._dial(camp, r, now, caps[r.call_id])
            except Exception:
                self.calls.start_failed(r, camp, now)

    async def _grant(
        self, ready: list[tuple[Reservation, CampaignState]], now: datetime
    ) -> list[tuple[Reservation, CampaignState]]:
        """Ask the database for the slots (engine/slots.py); what is not granted goes back."""
        shared = self.shared
        assert shared is not None
        granted: list[Grant] = []

        async def work(conn: AsyncConnection) -> None:
            # the buffered writes first: a call's end is committed with the freeing of its slot, never after
            await self._flush(conn, now)
            caps, number_cap = self.capacity.org_caps, self.settings.number_attempts_per_24h
            granted.append(await shared.grant(conn, ready, caps, number_cap, self.clock))

        try:
            await self._write(now, work)
        except Exception:
            for r, _ in ready:
                self.release(r, now)
            raise
        grant = granted[0]
        for r, camp in ready:
            if camp.id in grant.stopped:  # paused, cancelled or edited by another process: re-read it
                camp.stale = True
                self.dirty = True
                self.release(r, now)
        for r, _ in grant.on_dnc:  # put on the do-not-call list through another process: the claim skips it
            self.release(r, now)
        for r, when in grant.later:
            self.release(r, now, when, "waiting for a dialable time")
        for r, camp in reversed(grant.full):  # other workers hold the room: ask again shortly
            camp.waiting.appendleft(r)
            camp.cap_wait = now + self.settings.cap_retry
        return grant.granted

    async def _check(self, r: Reservation, now: datetime, caps: dict[str, Caps]) -> CampaignState | None:
        """The guards right before the dial: the campaign if the lead may be dialed now, else None
        (the lead was released). The caps on attempts to its number go into `caps` by call id."""
        camp = self.campaigns.get(r.campaign_id)
        self.capacity.unslot(r, camp)
        number = r.lead.phone_number
        if camp is None:
            self.release(r, now, final=True)
            return None
        if camp.stale or camp.status != "active" or (r.org_id, number) in self.memory.blocked:
            self.release(r, now)
            return None
        if camp.id in self.calls.abandon_checks:  # a call was just abandoned: no dial before the rate is checked
            self.release(r, now, reason="checking the abandonment rate")
            return None
        held = self.caller_holds.get(r.caller.phone_number_id)
        if held is not None and held > now:  # the carrier asked us to wait (Retry-After)
            self.release(r, now, held, "the carrier asked to wait (Retry-After)")
            return None
        if r.consent_expires is not None and r.slot >= r.consent_expires:  # claimed again: skipped then
            self.release(r, now, reason="its consent expired")
            return None
        when, caps[r.call_id] = recheck(camp, r, self.memory, self.settings.number_attempts_per_24h)
        if when != r.slot:
            self.release(r, now, when or r.slot + timedelta(hours=1), "waiting for a dialable time")
            return None
        if r.hook is not None:
            verdict = await r.hook
            if verdict.error is not None and not verdict.allow:  # fail closed: ask again later
                self.release(r, now, now + timedelta(seconds=RETRY_AFTER_ERROR_SECONDS), verdict.error)
                return None
            if not verdict.allow:
                reason = f"pre-dial hook: {verdict.reason or 'not allowed'}"
                self.release(r, now, reason=reason, final=True, status=ls.SKIPPED)
                return None
        return camp

    async def _dial(self, camp: CampaignState, r: Reservation, now: datetime, caps: Caps) -> None:
        """Place the call; `caps`: those on attempts to its number (`caps_for`), its start counts under."""
        forecast = self.settings.forecast  # nobody takes the call: no prompt to render, no token to hand over
        request = dial_request(camp, r, None, prompts=False) if forecast else dial_request(camp, r, self.token_key)
        live = live_of(r, camp, request.call_token)
        self.calls.dialing(live)
        self.stats["dialed"] += 1
        if caps:
            self.memory.started((r.org_id, live.to_number), r.slot, longest_window(caps))
        provider = camp.provider(r.caller.phone_number_id)
        carrier = self.carriers.get(provider)
        if carrier is None:
            note = f"no carrier for {provider}"
            self.calls.end(live, CallEvent(r.call_id, "ended", now, outcome=PROVIDER_ERROR), note)
            return
        started = None if forecast else time.perf_counter()  # a forecast's dials are not timed: no one reads it
        try:
            live.provider_call_id = await carrier.originate(request)
        except CarrierError as exc:
            self._timed(started)
            log.warning("originate failed", call_id=r.call_id, to=mask(live.to_number), error=exc.message)
            if exc.retry_after:
                self.caller_holds[r.caller.phone_number_id] = now + timedelta(seconds=exc.retry_after)
            self.calls.end(live, CallEvent(r.call_id, "ended", now, outcome=PROVIDER_ERROR), exc.message)
            return
        self._timed(started)
        self.writes.call(r.call_id, provider_call_id=live.provider_call_id)

    def _timed(self, started: float | None) -> None:
        """The dial request's time (since `started`, None: not timed) into /metrics' histogram."""
        if started is not None:
            self.metrics.dial_seconds.observe(time.perf_counter() - started)

    def release(
        self,
        r: Reservation,
        now: datetime,
        when: datetime | None = None,
        reason: str | None = None,
        *,
        final: bool = False,
        status: str | None = None,
    ) -> None:
        """A reservation that will not be dialed: its lead goes back as it was, no attempt counted
        (`final`: the lead is done, cancelled because its campaign ended, or given `status`)."""
        if r.hook is not None and not r.hook.done():
            r.hook.cancel()
        self.writes.released_calls.append(r.call_id)
        status = status or (ls.CANCELLED if final else r.prior_status)
        self.writes.lead(
            r.lead.id,
            status=status,
            attempts=r.attempt - 1,
            next_attempt_at=None if final else when or max(r.lead.next_attempt_at or now, now),
            reason=(reason or "the campaign ended") if final else reason,
            finished_at=now if final else None,
            updated_at=now,
        )
        self.writes.move(r.campaign_id, "in_progress", status)
        camp = self.campaigns.get(r.campaign_id)
        if camp is not None:
            camp.due_known = False

    def _forget(self, campaign_id: str) -> None:
        """A campaign lost with the lease session (another worker locked it while the database was
        away): dropped from this worker's memory without a write, as a dead worker's would be. Its new
        owner reconciles the calls in flight and the claimed leads (docs/deploy.md)."""
        log.warning("campaign lost with the lease session: another worker runs it now", campaign_id=campaign_id)
        camp = self.campaigns.pop(campaign_id, None)
        dropped = self.capacity.take_campaign(campaign_id) + (list(camp.waiting) if camp is not None else [])
        for r in dropped:
            if r.hook is not None and not r.hook.done():
                r.hook.cancel()
        for live in [c for c in self.calls.live.values() if c.campaign_id == campaign_id]:
            del self.calls.live[live.call_id]
            self.capacity.forget(live)
        self.writes.finished.discard(campaign_id)

    def _release_all(self, campaign_id: str, now: datetime, *, final: bool = False) -> None:
        """Every claimed lead of the campaign goes back to the queue (its guards are to be checked
        again), or is cancelled (`final`: the campaign ended)."""
        for r in self.capacity.take_campaign(campaign_id):
            self.release(r, now, final=final)
        camp = self.campaigns.get(campaign_id)
        if camp is not None:
            while camp.waiting:
                self.release(camp.waiting.popleft(), now, final=final)
            camp.slotted = 0
