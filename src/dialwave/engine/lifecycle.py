"""Campaign lifecycle in the engine: which running campaigns this worker owns and how each is set up
now (`refresh`), scheduled starts at `start_at`, completion at `end_at` (unfinished leads cancelled)
and when nothing is left (`auto_complete`), and the circuit breaker that pauses a campaign whose
carrier keeps failing. These functions read and write the database and return what they found; the
dispatcher applies it to its own state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.abandonment import WINDOW as ABANDON_WINDOW
from dialwave.domain.caller_ids import Caller
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes, not_before
from dialwave.domain.pacing import Pacer
from dialwave.engine.event_log import EventLog
from dialwave.engine.leases import Leases
from dialwave.engine.state import CampaignState
from dialwave.store.db import Database
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories.leads import cancel_open_leads
from dialwave.store.repositories.orgs import org_caps, org_twilio
from dialwave.store.repositories.server_secrets import call_token_key
from dialwave.store.repositories.webhooks import orgs_listening

log = structlog.get_logger("dialwave.engine")


@dataclass
class Refresh:
    """What a refresh found."""

    fresh: set[str]  # campaigns newly owned (taken over): their calls in flight need reconciling
    finished: set[str]  # campaigns no longer running here: their leases are given up
    running: set[str] = field(default_factory=set)  # campaigns running here after the refresh
    states: dict[str, CampaignState] = field(default_factory=dict)  # new, changed or invalidated ones
    ending: list[RowMapping] = field(default_factory=list)  # end_at passed: release their claims, then finish()
    org_caps: dict[str, int | None] = field(default_factory=dict)
    twilio: dict[str, dict[str, str]] = field(default_factory=dict)  # organizations' Twilio credentials
    token_key: bytes | None = None
    next_at: datetime | None = None  # the next start_at, end_at or first dial time to act on


async def refresh(
    conn: AsyncConnection,
    leases: Leases,
    events: EventLog,
    now: datetime,
    known: Mapping[str, CampaignState],
    in_flight: Callable[[str], int],
    *,
    need_token_key: bool,
) -> Refresh:
    """Re-read the running campaigns, take over those no worker owns, start scheduled ones whose
    start_at has come, and build the state of each campaign that is new, changed (its version moved)
    or invalidated (`stale`). Tells `events` which organizations listen."""
    running = await campaign_repo.engine_campaigns(conn)
    fresh = await leases.acquire(r["id"] for r in running)
    out = Refresh(fresh=fresh, finished=leases.owned - {r["id"] for r in running})
    rows = [r for r in running if r["id"] in leases.owned]
    orgs = {r["organization_id"] for r in rows}
    out.org_caps = await org_caps(conn, orgs)
    events.listening = await orgs_listening(conn, orgs)
    out.twilio = await org_twilio(conn, list(orgs))
    if need_token_key and rows:
        out.token_key = await call_token_key(conn, now)
    upcoming: list[datetime] = []
    for row in rows:
        config = CampaignConfig.model_validate(row["config"])
        status, sched = row["status"], config.schedule
        if status == "scheduled" and (sched.start_at is None or sched.start_at <= now):
            row = await _start_scheduled(conn, events, row, now)
            status = "active"
        if sched.end_at is not None and sched.end_at <= now:
            out.ending.append(row)
            out.finished.add(row["id"])
            continue
        upcoming.extend(t for t in (sched.start_at if status == "scheduled" else None, sched.end_at) if t and t > now)
        out.running.add(row["id"])
        old = known.get(row["id"])
        if old is not None and old.version == row["version"] and not old.stale:
            continue
        state = await _state(conn, row, config, old, in_flight(row["id"]))
        if status == "active":
            state.pacer.set_rate(config.pacing.attempts_per_second, now)
            if state.times.not_before is not None and state.times.not_before > now:
                upcoming.append(state.times.not_before)
        out.states[row["id"]] = state
    out.next_at = min(upcoming) if upcoming else None
    return out


async def _start_scheduled(conn: AsyncConnection, events: EventLog, row: RowMapping, now: datetime) -> RowMapping:
    await campaign_repo.set_campaign_status(conn, row["id"], row["status"], "active", now, None)
    await events.campaign_moved(conn, row["id"], row["status"], "active", "schedule.start_at reached", now)
    log.info("scheduled campaign started", campaign_id=row["id"], at=now.isoformat())
    reread = await campaign_repo.campaign_row(conn, row["id"])
    assert reread is not None
    return reread


async def _state(
    conn: AsyncConnection, row: RowMapping, config: CampaignConfig, old: CampaignState | None, in_flight: int
) -> CampaignState:
    ids = [c.phone_number_id for c in config.caller_ids]
    numbers = await number_repo.get_numbers(conn, row["organization_id"], ids)
    callers = [
        Caller(c.phone_number_id, numbers[c.phone_number_id]["number"], c.weight)
        for c in config.caller_ids
        if c.phone_number_id in numbers
    ]
    agent_version = row["agent_version_used"]
    agent = {}
    if config.agent_id and agent_version:
        agent = await agent_repo.agent_snapshot(conn, config.agent_id, agent_version) or {}
    return CampaignState(
        id=row["id"],
        org_id=row["organization_id"],
        version=row["version"],
        status=row["status"],
        config=config,
        times=CampaignTimes.of(
            config.schedule, not_before(config, row["started_at"]), config.compliance.unknown_location
        ),
        agent=agent,
        agent_version=agent_version,
        callers=callers,
        numbers=numbers,
        pacer=old.pacer if old is not None else Pacer(config.pacing.attempts_per_second),
        replan_from=row["replan_from"],
        turn=old.turn if old is not None else 0,
        in_flight=in_flight,
    )


async def finish(conn: AsyncConnection, events: EventLog, row: RowMapping, reason: str, now: datetime) -> None:
    """The campaign completes: its queued and retry-pending leads are cancelled (calls in flight finish)."""
    cancelled = await cancel_open_leads(conn, row["id"], reason, now)
    if await campaign_repo.set_campaign_status(conn, row["id"], row["status"], "completed", now, reason):
        await events.campaign_moved(conn, row["id"], row["status"], "completed", reason, now)
    log.info("campaign completed", campaign_id=row["id"], reason=reason, cancelled_leads=cancelled)


def idle(camp: CampaignState) -> bool:
    """auto_complete applies: an active campaign with nothing due, claimed or in flight."""
    return (
        camp.status == "active"
        and camp.config.auto_complete
        and camp.in_flight == 0
        and camp.held == 0
        and camp.due_known
        and camp.next_due is None
    )


async def complete_idle(db: Database, events: EventLog, campaign_ids: Iterable[str], now: datetime) -> list[str]:
    """Complete the campaigns that the database agrees have nothing queued, retry-pending or in
    progress; returns those completed."""
    done = []
    async with db.write() as conn:
        for campaign_id in campaign_ids:
            row = await campaign_repo.campaign_row(conn, campaign_id)
            if row is None or row["status"] != "active":
                continue
            reason = "nothing left to dial"
            if campaign_repo.leads_left(row) == 0 and await campaign_repo.set_campaign_status(
                conn, campaign_id, "active", "completed", now, reason
            ):
                await events.campaign_moved(conn, campaign_id, "active", "completed", reason, now)
                done.append(campaign_id)
                log.info("campaign completed", campaign_id=campaign_id, reason=reason)
    return done


def count_failure(camp: CampaignState, failed: bool, limit: int, note: str | None) -> str | None:
    """The circuit breaker: `limit` calls in a row ending as provider_error (carrier down, credentials
    revoked, rate limited) or internal_error (a failure of ours in the calls' path) pause the campaign
    instead of burning through its leads. Returns why, the moment it trips (0: never)."""
    camp.carrier_failures = camp.carrier_failures + 1 if failed else 0
    if not limit or camp.carrier_failures < limit or camp.status != "active":
        return None
    last = f" (last: {note})" if note else ""
    return (
        f"paused by the circuit breaker: {camp.carrier_failures} calls in a row ended as provider or internal errors"
        f"{last}; check the carrier, then resume"
    )


async def over_abandon_rate(db: Database, campaigns: Mapping[str, CampaignState], now: datetime) -> dict[str, str]:
    """Of these campaigns (each with a new abandoned call, already committed), those whose abandoned
    calls exceed compliance.max_abandon_rate of their live answers over the last 30 days: why to pause."""
    async with db.read() as conn:
        rates = await call_repo.abandon_counts(conn, list(campaigns), now - ABANDON_WINDOW)
    out: dict[str, str] = {}
    for campaign_id, rate in rates.items():
        limit = campaigns[campaign_id].config.compliance.max_abandon_rate
        if limit is not None and rate.exceeds(limit):
            out[campaign_id] = rate.pause_reason(limit)
    return out


async def pause_tripped(db: Database, events: EventLog, tripped: Mapping[str, str], now: datetime) -> None:
    """Pause the campaigns whose breaker tripped (after the writes that led to it are committed)."""
    async with db.write() as conn:
        for campaign_id, reason in tripped.items():
            if await campaign_repo.set_campaign_status(conn, campaign_id, "active", "paused", now, reason[:1000]):
                await events.campaign_moved(conn, campaign_id, "active", "paused", reason, now)
                log.warning("campaign paused by the engine", campaign_id=campaign_id, reason=reason)
