"""Campaign lifecycle in the engine: load running campaigns, start scheduled ones at `start_at`,
complete at `end_at` (unfinished leads cancelled) and when nothing is left (`auto_complete`)."""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.caller_ids import Caller
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes
from dialwave.domain.pacing import Pacer
from dialwave.engine import events
from dialwave.engine.claims import CallerLoad
from dialwave.engine.state import CampaignState
from dialwave.engine.writes import flush
from dialwave.store.repositories import dispatch as repo
from dialwave.store.repositories.agents import get_numbers
from dialwave.store.repositories.leads import cancel_open_leads
from dialwave.store.repositories.orgs import call_token_key, org_twilio
from dialwave.store.repositories.webhooks import orgs_listening

if TYPE_CHECKING:
    from dialwave.engine.dispatcher import Engine

log = structlog.get_logger("dialwave.engine")


def _not_before(row: RowMapping, config: CampaignConfig) -> datetime | None:
    """No dial before start_at, and none before `initial_delay_seconds` after the campaign went live."""
    bounds = [b for b in (config.schedule.start_at, row["started_at"]) if b is not None]
    if not bounds:
        return None
    return max(bounds) + timedelta(seconds=config.pacing.initial_delay_seconds)


async def _state(
    engine: Engine, conn: AsyncConnection, row: RowMapping, config: CampaignConfig, old: CampaignState | None
) -> CampaignState:
    ids = [c.phone_number_id for c in config.caller_ids]
    numbers = await get_numbers(conn, row["organization_id"], ids)
    callers = [
        Caller(c.phone_number_id, numbers[c.phone_number_id]["number"], c.weight)
        for c in config.caller_ids
        if c.phone_number_id in numbers
    ]
    for number in numbers.values():
        load = engine.callers.setdefault(number["id"], CallerLoad())
        rate = number["config"].get("max_calls_per_second")
        if rate is None:
            load.pacer = None
        elif load.pacer is None:
            load.pacer = Pacer(rate)
        else:
            load.pacer.rate = rate
    agent_version = row["agent_version_used"]
    agent = {}
    if config.agent_id and agent_version:
        agent = await repo.agent_snapshot(conn, config.agent_id, agent_version) or {}
    pacer = old.pacer if old is not None else Pacer(config.pacing.attempts_per_second)
    state = CampaignState(
        id=row["id"],
        org_id=row["organization_id"],
        version=row["version"],
        status=row["status"],
        config=config,
        times=CampaignTimes.of(config.schedule, _not_before(row, config)),
        agent=agent,
        agent_version=agent_version,
        callers=callers,
        numbers=numbers,
        pacer=pacer,
        turn=old.turn if old is not None else 0,
    )
    state.in_flight = sum(1 for live in engine.live.values() if live.campaign_id == state.id)
    return state


def _release_all(engine: Engine, campaign_id: str, now: datetime, *, final: bool = False) -> None:
    """Every claimed lead of the campaign goes back to the queue (its guards are to be checked again),
    or is cancelled (`final`: the campaign ended)."""
    keep = []
    for r in engine.reservations:
        if r.campaign_id == campaign_id:
            engine.callers[r.caller.phone_number_id].busy -= 1
            engine.release(r, now, final=final)
        else:
            keep.append(r)
    if len(keep) != len(engine.reservations):
        heapq.heapify(keep)
        engine.reservations = keep
    camp = engine.campaigns.get(campaign_id)
    if camp is not None:
        while camp.waiting:
            engine.release(camp.waiting.popleft(), now, final=final)
        camp.slotted = 0


async def refresh(engine: Engine, now: datetime) -> set[str]:
    """Re-read the campaigns this engine owns (taking over those no worker owns); apply scheduled
    transitions. Returns the campaigns it newly owns (their calls in flight need reconciling)."""
    async with engine.db.write() as conn:
        running = await repo.engine_campaigns(conn)
        fresh = await engine.leases.acquire(r["id"] for r in running)
        finished = engine.leases.owned - {r["id"] for r in running}
        rows = [r for r in running if r["id"] in engine.leases.owned]
        engine.org_caps = await repo.org_caps(conn, (r["organization_id"] for r in rows))
        engine.listening = await orgs_listening(conn, (r["organization_id"] for r in rows))
        twilio = await org_twilio(conn, list({r["organization_id"] for r in rows}))
        if engine.token_key is None and rows:
            engine.token_key = await call_token_key(conn, now)
        seen: set[str] = set()
        upcoming: list[datetime] = []
        for row in rows:
            config = CampaignConfig.model_validate(row["config"])
            status = row["status"]
            sched = config.schedule
            if status == "scheduled" and (sched.start_at is None or sched.start_at <= now):
                await repo.set_campaign_status(conn, row["id"], status, "active", now, None)
                await events.campaign_moved(engine, conn, row["id"], status, "active", "schedule.start_at reached", now)
                log.info("scheduled campaign started", campaign_id=row["id"], at=now.isoformat())
                reread = await repo.campaign_row(conn, row["id"])
                assert reread is not None
                row, status = reread, "active"
            if sched.end_at is not None and sched.end_at <= now:
                _release_all(engine, row["id"], now)
                await flush(engine, conn, now)  # released leads must be queued before they are cancelled
                await _finish(engine, conn, row, "schedule.end_at passed", now)
                finished.add(row["id"])
                continue
            for t in (sched.start_at if status == "scheduled" else None, sched.end_at):
                if t is not None and t > now:
                    upcoming.append(t)
            old = engine.campaigns.get(row["id"])
            seen.add(row["id"])
            if old is not None and old.version == row["version"] and not old.stale:
                continue
            if old is not None:
                _release_all(engine, row["id"], now)
            state = await _state(engine, conn, row, config, old)
            if status == "active":
                state.pacer.set_rate(config.pacing.attempts_per_second, now)
                if state.times.not_before is not None and state.times.not_before > now:
                    upcoming.append(state.times.not_before)
            engine.campaigns[row["id"]] = state
        for camp in engine.campaigns.values():
            camp.org_twilio = twilio.get(camp.org_id)
        for gone in set(engine.campaigns) - seen:
            _release_all(engine, gone, now, final=True)
            del engine.campaigns[gone]
        engine.memory.cooldown_orgs = {
            c.org_id
            for c in engine.campaigns.values()
            if c.config.cooldowns.after_success_hours or c.config.cooldowns.after_completion_hours
        }
        for camp in engine.campaigns.values():
            if camp.status == "active" and not camp.due_known:
                camp.next_due = await repo.next_due_at(conn, camp.id)
                camp.due_known = True
            if camp.status == "active" and camp.config.auto_complete:
                engine.writes.finished.add(camp.id)
        engine.lifecycle_at = min(upcoming) if upcoming else None
    await engine.leases.release(finished)
    return fresh - finished


async def _finish(engine: Engine, conn: AsyncConnection, row: RowMapping, reason: str, now: datetime) -> None:
    cancelled = await cancel_open_leads(conn, row["id"], reason, now)
    if await repo.set_campaign_status(conn, row["id"], row["status"], "completed", now, reason):
        await events.campaign_moved(engine, conn, row["id"], row["status"], "completed", reason, now)
    log.info("campaign completed", campaign_id=row["id"], reason=reason, cancelled_leads=cancelled)


async def check_done(engine: Engine, now: datetime) -> None:
    """auto_complete: an active campaign with nothing queued, retry-pending, reserved or in flight completes."""
    ids = [c for c in engine.writes.finished if c in engine.campaigns]
    engine.writes.finished.clear()
    candidates = [
        engine.campaigns[c]
        for c in ids
        if engine.campaigns[c].status == "active"
        and engine.campaigns[c].config.auto_complete
        and engine.campaigns[c].in_flight == 0
        and engine.campaigns[c].held == 0
        and engine.campaigns[c].due_known
        and engine.campaigns[c].next_due is None
    ]
    if not candidates:
        return
    await engine.write_buffer(now)
    async with engine.db.write() as conn:
        for camp in candidates:
            row = await repo.campaign_row(conn, camp.id)
            if row is None or row["status"] != "active":
                continue
            left = row["count_queued"] + row["count_retry_pending"] + row["count_in_progress"]
            if left == 0 and await repo.set_campaign_status(
                conn, camp.id, "active", "completed", now, "nothing left to dial"
            ):
                await events.campaign_moved(engine, conn, camp.id, "active", "completed", "nothing left to dial", now)
                del engine.campaigns[camp.id]
                log.info("campaign completed", campaign_id=camp.id, reason="nothing left to dial")


def count_failure(engine: Engine, camp: CampaignState, failed: bool, note: str | None) -> None:
    """The circuit breaker: `breaker_failures` calls in a row ending as provider_error (carrier down,
    credentials revoked, rate limited) pause the campaign instead of burning through its leads."""
    limit = engine.settings.breaker_failures
    camp.carrier_failures = camp.carrier_failures + 1 if failed else 0
    if limit and camp.carrier_failures >= limit and camp.id not in engine.tripped and camp.status == "active":
        last = f" (last: {note})" if note else ""
        engine.tripped[camp.id] = (
            f"paused by the circuit breaker: {camp.carrier_failures} calls in a row ended as provider errors"
            f"{last}; check the carrier, then resume"
        )


async def trip_breakers(engine: Engine, now: datetime) -> None:
    """Pause the campaigns whose breaker tripped (after the writes that led to it are committed)."""
    tripped, engine.tripped = engine.tripped, {}
    await engine.write_buffer(now)
    async with engine.db.write() as conn:
        for campaign_id, reason in tripped.items():
            if await repo.set_campaign_status(conn, campaign_id, "active", "paused", now, reason[:1000]):
                await events.campaign_moved(engine, conn, campaign_id, "active", "paused", reason, now)
                log.warning("circuit breaker tripped", campaign_id=campaign_id, reason=reason)
    for campaign_id in tripped:
        engine.invalidate(campaign_id=campaign_id)
