"""Caps across workers (PostgreSQL): right before a batch of attempts is dialed, one transaction asks
the database for their slots. It reads each campaign's committed status and version under a share
lock (a pause or an edit that answered before is seen; one that commits later waits for this grant),
locks each organization (and each number under a per-number attempt cap), counts the slots held by
every worker, grants in order while the campaign, organization and caller-id caps have room, and
records the grants (a `dial_slots` row each, the calls `dialing` from the instant read under those
locks). Numbers put on the organization's do-not-call list since the claim are not dialed. A slot is
freed when its call ends; a dead worker's are freed by the worker that takes its
campaigns over (`adopt`), or swept when no worker runs their campaign any more.

Local counting (`capacity.py`) still decides which reservations are worth asking for; the database
has the last word. SQLite runs one engine, whose local counts are exact: no grant is asked there."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.dialable import capped_until, caps_for, longest_window
from dialwave.engine.state import CampaignState, Live, Reservation
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import dnc as dnc_repo
from dialwave.store.repositories import slots as repo


@dataclass
class Grant:
    granted: list[tuple[Reservation, CampaignState]] = field(default_factory=list)
    full: list[tuple[Reservation, CampaignState]] = field(default_factory=list)  # no room now: wait, retry
    later: list[tuple[Reservation, datetime]] = field(default_factory=list)  # a per-number cap: not before
    stopped: set[str] = field(default_factory=set)  # campaigns paused, cancelled or edited since read
    on_dnc: list[tuple[Reservation, CampaignState]] = field(default_factory=list)  # listed since the claim


class SharedCaps:
    def __init__(self) -> None:
        self.worker_key = secrets.randbelow(2**31 - 1) + 1  # the session lock proving this worker alive
        self.released: list[str] = []  # calls ended here whose slots are still to be deleted
        self.sweeps = 0

    def release(self, call_id: str) -> None:
        self.released.append(call_id)

    async def free_released(self, conn: AsyncConnection) -> None:
        """Delete the slots of calls that ended (in the caller's transaction; kept if it fails)."""
        if self.released:
            taken, self.released = self.released, []
            try:
                await repo.delete_slots(conn, taken)
            except BaseException:
                self.released = taken + self.released
                raise

    async def grant(
        self,
        conn: AsyncConnection,
        batch: Sequence[tuple[Reservation, CampaignState]],
        org_caps: dict[str, int | None],
        number_cap: int | None,
        clock: Callable[[], datetime] | None,
    ) -> Grant:
        out = Grant()
        await self.free_released(conn)  # the caller flushed the ends of these calls in this transaction
        states = await repo.campaign_states(conn, sorted({camp.id for _, camp in batch}))
        for _, camp in batch:
            if states.get(camp.id) != ("active", camp.version):
                out.stopped.add(camp.id)
        live = [(r, camp) for r, camp in batch if camp.id not in out.stopped]
        live = await self._not_on_dnc(conn, live, out)
        if not live:
            return out
        caps = {r.call_id: caps_for(r.lead.phone_number, number_cap, r.lead.region) for r, _ in live}
        capped = {(r.org_id, r.lead.phone_number) for r, _ in live if caps[r.call_id]}
        keys = [repo.org_key(r.org_id) for r, _ in live] + [repo.number_key(o, n) for o, n in capped]
        await repo.lock_keys(conn, keys)
        orgs, camps, callers = await repo.held(conn, sorted({r.org_id for r, _ in live}))
        recent: dict[tuple[str, str], list[datetime]] = {}
        if capped:
            window = max(longest_window(c) for c in caps.values() if c)
            first = min(r.slot for r, _ in live) - window
            for org_id in {o for o, _ in capped}:
                numbers = sorted(n for o, n in capped if o == org_id)
                for number, times in (await call_repo.attempts_since(conn, org_id, numbers, first)).items():
                    recent[(org_id, number)] = times
        at = clock() if clock is not None else None  # read after the counts: later than any end they missed
        rows = []
        for r, camp in live:
            start = max(r.slot, at) if at is not None else r.slot
            key = (r.org_id, r.lead.phone_number)
            cap = caps[r.call_id]
            if cap:
                when = capped_until(recent.get(key, []), cap, start)
                if when > start:
                    out.later.append((r, when))
                    continue
            org_cap = org_caps.get(r.org_id)
            caller = r.caller.phone_number_id
            limit = camp.caller_limit(caller)
            if (
                camps[camp.id] >= camp.config.pacing.max_concurrency
                or (org_cap is not None and orgs[r.org_id] >= org_cap)
                or (limit is not None and callers[caller] >= limit)
            ):
                out.full.append((r, camp))
                continue
            camps[camp.id] += 1
            orgs[r.org_id] += 1
            callers[caller] += 1
            if cap:
                recent.setdefault(key, []).append(start)
            r.slot = start
            out.granted.append((r, camp))
            rows.append(self._row(r.call_id, r.org_id, camp.id, caller, start))
        await repo.insert_slots(conn, rows)
        started = {r.call_id: {"status": "dialing", "started_at": r.slot} for r, _ in out.granted}
        await call_repo.update_calls(conn, started)  # other workers' per-number caps see them at once
        return out

    async def _not_on_dnc(
        self, conn: AsyncConnection, batch: list[tuple[Reservation, CampaignState]], out: Grant
    ) -> list[tuple[Reservation, CampaignState]]:
        """Numbers put on the organization's do-not-call list since the claim, through any process:
        not dialed (the claim will skip them)."""
        listed: set[tuple[str, str]] = set()
        for org_id in {r.org_id for r, camp in batch if camp.config.dnc.uses_organization_list}:
            numbers = sorted({r.lead.phone_number for r, c in batch if r.org_id == org_id})
            listed |= {(org_id, n) for n in await dnc_repo.dnc_contains(conn, org_id, numbers)}
        for r, camp in batch:
            if camp.config.dnc.uses_organization_list and (r.org_id, r.lead.phone_number) in listed:
                out.on_dnc.append((r, camp))
        dropped = {r.call_id for r, _ in out.on_dnc}
        return [(r, camp) for r, camp in batch if r.call_id not in dropped]

    async def adopt(self, conn: AsyncConnection, campaign_ids: Sequence[str], live: Sequence[Live]) -> None:
        """After taking campaigns over and reconciling their calls: the calls still up hold slots of
        this worker, every other slot of these campaigns is freed."""
        await self.free_released(conn)
        rows = [self._row(c.call_id, c.org_id, c.campaign_id, c.caller_id, c.started_at) for c in live]
        await repo.keep_only(conn, campaign_ids, rows)

    async def sweep(self, conn: AsyncConnection) -> int:
        self.sweeps += 1
        return await repo.sweep(conn)

    def _row(self, call_id: str, org_id: str, campaign_id: str, caller_id: str, at: datetime) -> dict[str, object]:
        return {
            "call_id": call_id,
            "organization_id": org_id,
            "campaign_id": campaign_id,
            "caller_id": caller_id,
            "worker_key": self.worker_key,
            "created_at": at,
        }
