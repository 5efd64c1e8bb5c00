"""The engine's upkeep: re-reading the campaigns (`_refresh`: leases, edits, scheduled starts and
ends), reconciling the calls of campaigns taken over (`_recover`), and the lifecycle's decisions after
a tick (auto-complete, the abandonment rate, pausing tripped campaigns). A part of the Engine
(dispatcher.py), which holds the state these methods use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.engine import lifecycle
from dialwave.engine.event_log import EventLog
from dialwave.engine.leases import Leases
from dialwave.engine.recovery import recover
from dialwave.engine.starts import Starts
from dialwave.engine.storage import Storage
from dialwave.store.db import Database


class Upkeep(Starts):
    """The Engine's refresh, recovery and lifecycle steps, beside its start path (the Engine sets these
    attributes and the group commit's `_write`, `_flush` and `write_buffer`)."""

    db: Database
    events: EventLog
    leases: Leases
    store: Storage
    lifecycle_at: datetime | None
    refreshes: int

    async def write_buffer(self, now: datetime, *, sync: bool = True, calls: bool = True, leads: bool = True) -> None:
        raise NotImplementedError

    def invalidate(self, org_id: str | None = None, campaign_id: str | None = None) -> None:
        raise NotImplementedError

    async def _recover(self, now: datetime, campaign_ids: set[str]) -> None:
        """Reconcile the calls in flight of campaigns taken over (or owned at start-up); on PostgreSQL
        the slots of those still up become ours and every other slot of those campaigns is freed."""
        recovered = await recover(self.calls, self.db, self.campaigns, now, campaign_ids)
        if recovered:
            self.metrics.calls_recovered.inc(recovered)
        shared = self.shared
        if shared is not None and campaign_ids:
            live = [c for c in self.calls.live.values() if c.campaign_id in campaign_ids]

            async def work(conn: AsyncConnection) -> None:
                await self._flush(conn, now)  # the calls recovery ended, with the freeing of their slots
                await shared.adopt(conn, sorted(campaign_ids), live)

            await self._write(now, work)

    async def _refresh(self, now: datetime) -> set[str]:
        """Re-read the campaigns (lifecycle.refresh) and apply what changed; returns the campaigns newly
        owned (their calls in flight need reconciling)."""
        refreshed: list[lifecycle.Refresh] = []

        async def work(conn: AsyncConnection) -> None:
            await self.store.sync(conn, calls=False)  # a forecast's leads held in memory: the lifecycle reads them
            found = await lifecycle.refresh(
                conn,
                self.leases,
                self.events,
                now,
                self.campaigns,
                self.calls.in_flight,
                need_token_key=self.token_key is None,
            )
            for lost in self.leases.take_lost():  # before the campaigns gone are released below: no write
                self._forget(lost)
            self.capacity.org_caps = found.org_caps
            self.token_key = self.token_key or found.token_key
            for row in found.ending:
                self._release_all(row["id"], now)
            if found.ending:
                await self._flush(conn, now, sync=True, calls=False)  # released leads queued before they are cancelled
                for row in found.ending:
                    await lifecycle.finish(conn, self.events, row, "schedule.end_at passed", now)
            for campaign_id, state in found.states.items():
                self.store.forget(campaign_id)  # changed: its leads are read again
                if campaign_id in self.campaigns:
                    self._release_all(campaign_id, now)
                self.capacity.pace_callers(state.numbers.values())
                self.campaigns[campaign_id] = state
            for gone in set(self.campaigns) - found.running:
                self._release_all(gone, now, final=True)
                del self.campaigns[gone]
            self._settle(found.twilio)
            if self.writes.released_calls:  # leads released above must be queued before the due times are read
                await self._flush(conn, now)
            for camp in self.campaigns.values():
                if camp.status == "active" and not camp.due_known:
                    camp.next_due = await self.store.next_due_at(conn, camp.id)
                    camp.due_known = True
                if camp.status == "active" and camp.config.auto_complete:
                    self.writes.finished.add(camp.id)
            self.lifecycle_at = found.next_at
            if self.shared is not None and self.leases.owned and self.refreshes % self.settings.sweep_every == 0:
                await self.shared.sweep(conn)
            self.refreshes += 1
            refreshed.append(found)

        await self._write(now, work)  # a failure puts back what it flushed and what it released
        found = refreshed[0]
        await self.leases.release(found.finished)
        return found.fresh - found.finished

    def _settle(self, twilio: Mapping[str, dict[str, str]]) -> None:
        """What every running campaign shares after a refresh: its organization's Twilio credentials,
        and which organizations use cooldowns (the dial-time guards remember their answers)."""
        for camp in self.campaigns.values():
            camp.org_twilio = twilio.get(camp.org_id)
        self.memory.cooldown_orgs = {
            c.org_id
            for c in self.campaigns.values()
            if c.config.cooldowns.after_success_hours or c.config.cooldowns.after_completion_hours
        }

    async def _complete_idle(self, now: datetime) -> None:
        """auto_complete: an active campaign with nothing queued, retry-pending, reserved or in flight completes."""
        ids = [c for c in self.writes.finished if c in self.campaigns]
        self.writes.finished.clear()
        candidates = [c for c in ids if lifecycle.idle(self.campaigns[c])]
        if not candidates:
            return
        try:
            await self.write_buffer(now, calls=False, leads=False)  # the counters decide
            done = await lifecycle.complete_idle(self.db, self.events, candidates, now)
        except BaseException:
            self.writes.finished.update(ids)  # looked at again after the database is back
            raise
        for campaign_id in done:
            del self.campaigns[campaign_id]

    async def _check_abandonment(self, now: datetime) -> None:
        """Campaigns with a new abandoned call: over compliance.max_abandon_rate, they pause (with the
        circuit breaker's trips, below)."""
        ids, self.calls.abandon_checks = self.calls.abandon_checks, set()
        checked = {c: self.campaigns[c] for c in ids if c in self.campaigns and self.campaigns[c].status == "active"}
        if not checked:
            return
        await self.write_buffer(now)  # the abandoned calls are counted from the database
        for campaign_id, reason in (await lifecycle.over_abandon_rate(self.db, checked, now)).items():
            self.calls.tripped.setdefault(campaign_id, reason)

    async def _pause_tripped(self, now: datetime) -> None:
        tripped, self.calls.tripped = self.calls.tripped, {}
        await self.write_buffer(now)
        await lifecycle.pause_tripped(self.db, self.events, tripped, now)
        for campaign_id in tripped:
            self.invalidate(campaign_id=campaign_id)
