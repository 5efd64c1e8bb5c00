"""The dispatcher: one `tick(now)` does everything due at `now`; `next_wake()` says when it next has work.

A tick (1) applies carrier events and starts reserved attempts whose slot has come, in time order;
(2) group-commits the buffered writes together with new claims in one transaction; (3) runs the
campaign lifecycle (scheduled starts, `end_at`, auto-complete). The same code runs under `dialwave
serve` (system clock, runner.RealtimeRunner) and in tests and `dialwave simulate` (virtual clock,
runner.VirtualRunner).

The Engine owns the state and composes the parts, each given only what it uses: `Capacity`
(concurrency and pace slots), the `WriteBuffer` and its `flush`, the `EventLog`, `claims.claim`,
`dial` (dial-time guards and the carrier request), `endings.record_end`, `lifecycle` and `recovery`.
The start path (guards, the grant across workers, the dial, a release) is its part in `starts.py`;
when it next has work, and the calm instants before then (only carrier events due), in `wake.py`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.engine.calls import Calls
from dialwave.engine.capacity import Capacity
from dialwave.engine.claims import back_off, claim, needs_leads, target
from dialwave.engine.context_push import ContextPusher
from dialwave.engine.dial import Memory
from dialwave.engine.event_log import EventLog
from dialwave.engine.leases import Leases
from dialwave.engine.predial import PreDialClient
from dialwave.engine.replan import replan_step
from dialwave.engine.settings import EngineSettings
from dialwave.engine.slots import SharedCaps
from dialwave.engine.state import CampaignState
from dialwave.engine.storage import SQL, MemoryStore, Storage
from dialwave.engine.upkeep import Upkeep
from dialwave.engine.wake import Wake
from dialwave.engine.write_buffer import WriteBuffer, flush
from dialwave.metrics import Metrics, Unread
from dialwave.store.db import Database, savepoint, unreachable
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.telephony.base import CallEvent, Carrier

log = structlog.get_logger("dialwave.engine")


class Engine(Wake, Upkeep):
    def __init__(
        self,
        db: Database,
        carriers: dict[str, Carrier],
        settings: EngineSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.carriers = carriers
        self.settings = settings or EngineSettings()
        self.clock = clock  # a real (or scaled) clock: a granted attempt starts when granted, not before
        self.campaigns: dict[str, CampaignState] = {}
        # PostgreSQL may have several workers: the caps are held through the database (engine/slots.py)
        shared = db.dialect == "postgresql" and self.settings.shared_caps
        self.shared = SharedCaps() if shared else None
        self.capacity = Capacity(self.campaigns, self.settings.horizon, self.shared)
        self.writes = WriteBuffer()
        # a forecast's leads, calls and counters are held in memory until something reads the database
        self.store: Storage = MemoryStore() if self.settings.forecast and db.dialect == "sqlite" else SQL
        self.events = EventLog(self.writes, self.campaigns)
        self.memory = Memory()
        self.leases = Leases(db, self.shared.worker_key if self.shared is not None else None)
        self.predial = PreDialClient(allow_loopback=self.settings.allow_loopback)
        self.context_push = ContextPusher(db, allow_loopback=self.settings.allow_loopback)
        self.stats = {"decisions": 0, "dialed": 0, "ended": 0, "flushes": 0}
        # this process's (shared with its API's /metrics); a forecast's are read by nobody (metrics.Unread)
        self.metrics = Unread() if self.settings.forecast else metrics or Metrics()
        self.calls = Calls(
            self.campaigns,
            carriers,
            self.capacity,
            self.writes,
            self.events,
            self.memory,
            self.context_push,
            self.settings.breaker_failures,
            self.stats,
            self.metrics,
        )
        self.metrics.watch_engine(lambda: len(self.calls.live), lambda: len(self.campaigns))
        self.now: datetime | None = None
        self.flush_at: datetime | None = None  # the last group commit + flush_every (None: none yet)
        self.next_refresh: datetime | None = None
        self.lifecycle_at: datetime | None = None
        self.dirty = True  # campaigns must be re-read
        self.calm_before: datetime | None = None  # see next_wake
        self._campaigns_wake: datetime | None = None  # the campaigns' part of the last next_wake()
        self.caller_holds: dict[str, datetime] = {}  # phone number -> no dial through it before (Retry-After)
        self.token_key: bytes | None = None  # per-call tokens handed to the agent runtime
        self.started = False
        self.refreshes = 0
        self.draining = False  # a graceful stop: calls in flight finish, nothing new starts

    async def close(self) -> None:
        """Stop owning campaigns (another worker may take them over)."""
        await self.leases.close()
        await self.predial.close()
        await self.context_push.close()

    def failed(self, exc: BaseException) -> None:
        """A tick failed: if the database was away, the lease session may have ended with it."""
        if unreachable(exc):
            self.leases.suspect = True

    def drain(self, now: datetime) -> None:
        """A graceful stop begins: no more claims, starts or campaigns taken; every claimed lead goes
        back to the queue (committed with the next flush); calls in flight go on to their end."""
        self.draining = True
        self.leases.frozen = True
        for campaign_id in list(self.campaigns):
            self._release_all(campaign_id, now)

    def invalidate(self, org_id: str | None = None, campaign_id: str | None = None) -> None:
        """A campaign's status or config, its leads, or the DNC list changed (the API calls this after
        committing). Reservations of the affected campaigns stop at once; the next tick re-reads them."""
        for camp in self.campaigns.values():
            if (campaign_id is None or camp.id == campaign_id) and (org_id is None or camp.org_id == org_id):
                camp.stale = True
        self.dirty = True

    # -- the tick ------------------------------------------------------------------------------
    async def tick(self, now: datetime, events: list[CallEvent] | None = None) -> None:
        """Do everything due at `now`. `events`: the carrier events due, polled already (apply_calm)."""
        self.now = now
        if self.leases.suspect or self.leases.broken:  # the database went away: the leases first
            await self.leases.verify()
        if self.leases.lost:
            for campaign_id in self.leases.take_lost():
                self._forget(campaign_id)
        if not self.started:
            await self._recover(now, await self._refresh(now))
            self.started = True
        await self._run_due(now, events)
        refresh_due = self.next_refresh is not None and now >= self.next_refresh
        lifecycle_due = self.lifecycle_at is not None and now >= self.lifecycle_at
        if self.dirty or refresh_due or lifecycle_due:
            await self.write_buffer(now)
            taken_over = await self._refresh(now)
            if taken_over:
                self.metrics.leases_acquired.inc(len(taken_over))
                await self._recover(now, taken_over)
            self.dirty = False
            if self.settings.refresh_every is not None:
                self.next_refresh = now + self.settings.refresh_every
        for camp in self.campaigns.values():  # (a loop, not a list or generator made every tick)
            if camp.replan_waiting:
                await self._replan(now)
                break
        if not self.draining:
            for camp in self.campaigns.values():
                if needs_leads(camp, self.settings, now):
                    await self._claim(now)
                    await self._run_due(now)
                    break
        if self._flush_due(now):
            await self.write_buffer(now, sync=False)
        if self.calls.abandon_checks:
            await self._check_abandonment(now)
        if self.calls.tripped:
            await self._pause_tripped(now)
        if self.writes.finished:
            await self._complete_idle(now)

    async def write_buffer(self, now: datetime, *, sync: bool = True, calls: bool = True, leads: bool = True) -> None:
        """Group-commit whatever is buffered (`sync`: and make the database show every change: a
        forecast's in-memory store writes its rows; the lifecycle reads them next; `calls=False`: the
        reader reads no call; `leads=False`: nor any lead, the counters only)."""
        await self._write(now, lambda conn: self._flush(conn, now, sync=sync, calls=calls, leads=leads))

    async def flush_now(self, now: datetime) -> None:
        """Write everything buffered (the runner, when idle or stopping). A forecast's calls and leads
        stay in its store: its result reads the calls from there (Storage.campaign_calls) and the
        campaign's counters from the database, no lead."""
        await self.write_buffer(now, calls=False, leads=False)
        if self.writes.finished:
            await self._complete_idle(now)

    # -- events and slots, in time order -----------------------------------------------------------
    async def _run_due(self, now: datetime, events: list[CallEvent] | None = None) -> None:
        if events is None:
            events = self._poll(now)
        i = 0
        if not self.draining:
            self.capacity.feed(now, self.predial.ask)
        while True:
            slot = self.capacity.next_slot()
            if slot is not None and slot > now:
                slot = None
            event = events[i] if i < len(events) else None
            if event is None and slot is None:
                break
            if event is not None and (slot is None or event.at <= slot):
                self._hold_caller(event, now)
                self.calls.apply(event, now)
                i += 1
                if event.kind == "ended" and not self.draining:
                    self.capacity.feed(now, self.predial.ask)  # capacity came free
            else:  # every slot due before the next event starts in one batch (one grant, across workers)
                batch = [self.capacity.pop()]
                limit = event.at if event is not None else now
                while (slot := self.capacity.next_slot()) is not None and slot <= now and slot < limit:
                    batch.append(self.capacity.pop())
                live = len(self.calls.live)
                await self._start_batch(batch, now)
                if len(self.calls.live) - live < len(batch) and not self.draining:
                    # room came free at the dial (a lead released by the guards, a start that failed): the
                    # next waiting lead gets the next pace slot now, not at whatever event comes next
                    self.capacity.feed(now, self.predial.ask)
        if self.calls.deadline_due(now):  # (most ticks: none due, no coroutine to run)
            await self.calls.run_deadlines(now)

    def _hold_caller(self, event: CallEvent, now: datetime) -> None:
        """A call the platform refused after the dial was accepted (a 429 on a later step): nothing more
        goes through its number until the wait has passed, as with a refused dial's Retry-After."""
        if event.retry_after:  # (most events: none, and no look-up)
            live = self.calls.live.get(event.call_id)
            if live is not None:
                self.caller_holds[live.caller_id] = now + timedelta(seconds=event.retry_after)

    async def _replan(self, now: datetime) -> None:
        """The next batch of each re-plan waiting (engine/replan.py)."""
        for camp in [c for c in self.campaigns.values() if c.replan_waiting]:
            if self.store.memory:
                await self.write_buffer(now)  # the re-plan moves leads in the database
            await replan_step(self.db, camp, now)
            self.store.forget(camp.id)

    def note_result(self, call_id: str, conversion: bool | None, callback_at: datetime | None = None) -> bool:
        """The runtime posted a result while the call is still up (the API calls this after its commit)."""
        return self.calls.note_result(call_id, conversion, callback_at)

    # -- writes, claims and the lifecycle ------------------------------------------------------------
    async def _write(self, now: datetime, work: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        """Run `work(conn)` in one transaction; buffered writes, and slots to free, survive a failed
        commit (the database going away at the commit: the ends are written again, so are the frees)."""
        freeing = list(self.shared.released) if self.shared is not None else []
        try:
            async with self.db.write() as conn:
                await work(conn)
        except BaseException:
            self.writes.put_back()  # written or not: its counters are counted from the leads next time
            if self.shared is not None:
                self.shared.released = list(dict.fromkeys(freeing + self.shared.released))
            raise
        self.writes.committed()
        self.flush_at = now + self.settings.flush_every

    async def _flush(
        self, conn: AsyncConnection, now: datetime, *, sync: bool = False, calls: bool = True, leads: bool = True
    ) -> None:
        if sync:
            await self._flush(conn, now)
            await self.store.sync(conn, calls=calls, leads=leads)
            return
        if self.writes.empty and (self.shared is None or not self.shared.released):
            return
        results = not self.settings.forecast  # a forecast's calls get no result from another process
        flushed = await flush(self.writes, self.events.dnc_added, conn, now, results=results, store=self.store)
        for changed in flushed:
            if changed in self.campaigns:
                self.campaigns[changed].due_known = False
        if self.shared is not None:
            await self.shared.free_released(conn)
        self.stats["flushes"] += 1

    async def _claim(self, now: datetime) -> None:
        wanted = [c for c in self.campaigns.values() if needs_leads(c, self.settings, now)]

        async def work(conn: AsyncConnection) -> None:
            await self._flush(conn, now)
            statuses = await campaign_repo.lock_campaigns(conn, [c.id for c in wanted])
            for camp in wanted:
                if statuses.get(camp.id) != "active":
                    camp.stale = True
                    self.dirty = True
                    continue
                if camp.due_known and (camp.next_due is None or camp.next_due > now):
                    continue
                want = target(camp, self.settings) - camp.held
                try:
                    # a failing claim rolls back alone: other campaigns go on (a forecast's fails whole: its
                    # store's changes cannot be rolled back, so it needs no savepoint)
                    async with nullcontext() if self.store.memory else savepoint(conn):
                        cap = self.settings.number_attempts_per_24h
                        result = await claim(conn, camp, now, want, cap, self.store)
                        if any(result.deltas.values()):
                            self.writes.counting.add(camp.id)
                            await self.store.add_counts(conn, camp.id, result.deltas)
                except Exception:
                    if self.store.memory:  # what it changed in memory is not rolled back: the forecast fails
                        raise
                    log.exception("a claim failed: the campaign backs off", campaign_id=camp.id)
                    trip = back_off(camp, now)
                    if trip is not None and camp.id not in self.calls.tripped:
                        self.calls.tripped[camp.id] = trip
                    continue
                camp.claim_failures = 0
                claimed.append(camp)
                self.stats["decisions"] += result.decided
                camp.waiting.extend(result.reservations)
                camp.backlog = result.decided >= want  # it took all it asked for: more are due
                camp.next_due = now if camp.backlog else await self.store.next_due_at(conn, camp.id)
                camp.due_known = True
                if camp.next_due is None and camp.in_flight == 0 and camp.held == 0:
                    self.writes.finished.add(camp.id)

        claimed: list[CampaignState] = []
        started = time.perf_counter()
        try:
            await self._write(now, work)
        except BaseException:
            # Committed or not, nobody knows: the campaigns are read again, and their claimed leads go
            # back to the queue (a no-op where the claim was rolled back), counted from the leads.
            for camp in claimed:
                camp.stale = True
                self.writes.recount.add(camp.id)
            self.dirty = self.dirty or bool(claimed)
            raise
        self.metrics.claim_seconds.observe(time.perf_counter() - started)
