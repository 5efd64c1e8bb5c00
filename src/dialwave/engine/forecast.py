"""Forecast a live campaign (`POST /v1/campaigns/{id}/forecast`): the real engine on a virtual clock,
in a throwaway SQLite database, over a snapshot of the campaign's remaining leads (queued, retry-pending
and in flight, with their attempt counts and retry state), with the outcome mix and call lengths this
campaign has shown so far (else its numbers' simulated model, else the simulator's defaults), and with a
"what if" merge-patch applied to its configuration.

The snapshot is read here, in the API process; the simulation runs in a worker process (one at a time
per server process), so a forecast of tens of thousands of attempts holds neither the event loop nor the
interpreter lock of the server that answers everyone else."""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from dialwave.clock import VirtualClock
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.forecast_model import observed_model
from dialwave.domain.outcomes import REACHED
from dialwave.domain.resources import AgentConfig, PhoneNumberConfig, SimulatedSettings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.errors import Conflict
from dialwave.services import agents as agent_service
from dialwave.services import campaigns as campaign_service
from dialwave.services import phone_numbers as number_service
from dialwave.services.auth import create_key
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import dnc as dnc_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories.leads import LeadBatch, NewLead
from dialwave.store.schema import create_throwaway_schema
from dialwave.telephony.simulated import SimulatedCarrier

HORIZON = timedelta(days=60)  # a forecast looks this far ahead at most
MAX_LEADS = 20_000  # more remaining leads than this: an even sample, at the same share of the pacing
_pool: ProcessPoolExecutor | None = None
_one_at_a_time = asyncio.Lock()


async def forecast(
    db: Database, org_id: str, campaign_id: str, changes: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The campaign's forecast from `now` (404 for another organization's id; 409 for a finished
    campaign; 422 / 409 for `changes` a PATCH would refuse)."""
    snapshot = await take_snapshot(db, org_id, campaign_id, changes or {}, now)
    global _pool
    async with _one_at_a_time:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return await asyncio.get_running_loop().run_in_executor(_pool, run_snapshot, snapshot)


async def take_snapshot(
    db: Database, org_id: str, campaign_id: str, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Everything the simulation needs, as plain values (it crosses to the worker process)."""
    row = await campaign_service.get_campaign(db, org_id, campaign_id)
    if row["status"] in ("completed", "cancelled"):
        raise Conflict(f"the campaign is {row['status']}: nothing is left to forecast", code="CAMPAIGN_FINISHED")
    config, _ = campaign_service.patched(row, changes, now)
    async with db.read() as conn:
        agent = await campaign_service.agent_of(conn, org_id, config)
        numbers = await number_repo.get_numbers(conn, org_id, [c.phone_number_id for c in config.caller_ids])
        remaining = await lead_repo.remaining_leads(conn, campaign_id)
        ended = await call_repo.ended_calls(conn, campaign_id)
        blocked = await dnc_repo.dnc_contains(conn, org_id, [lead["phone_number"] for lead in remaining])
    base = next(
        (
            SimulatedSettings.model_validate(n["config"]["simulated"])
            for n in numbers.values()
            if n["config"].get("simulated")
        ),
        None,
    )
    model, mix = observed_model(ended, base)
    share = min(1.0, MAX_LEADS / len(remaining)) if remaining else 1.0
    if share < 1.0:
        step = len(remaining) / MAX_LEADS
        remaining = [remaining[int(i * step)] for i in range(MAX_LEADS)]
    return {
        "now": now,
        "status": row["status"],
        "config": _sanitized(config, share),
        "agent": _agent(agent),
        "numbers": [
            _number(numbers[c.phone_number_id], share) for c in config.caller_ids if c.phone_number_id in numbers
        ],
        "model": model.model_dump(mode="json"),
        "leads": [dict(lead) for lead in remaining],
        "dnc": sorted(blocked),
        "share": share,
        "basis": {
            "outcome_mix": mix,
            "observed_calls": len(ended),
            "leads": int(len(remaining) / share) if share < 1 else len(remaining),
            "sampled_leads": len(remaining) if share < 1 else None,
            "as_if": "resumed now"
            if row["status"] == "paused"
            else "started now"
            if row["status"] == "draft"
            else None,
            "changes": changes or None,
            "model": model.model_dump(mode="json", exclude={"scripted"}),
            "assumes": "the pre-dial hook allows every lead; the organization's other campaigns are not simulated",
            "horizon_days": HORIZON.days,
        },
    }


def _sanitized(config: CampaignConfig, share: float) -> dict[str, Any]:
    """Nothing in a forecast may reach outside it: no webhook, no pre-dial hook. A sample dials at its
    share of the pace."""
    data = config.model_dump(mode="json")
    data["webhook"] = {"url": None, "metadata": {}}
    data["pre_dial_hook"] = None
    data["agent_version"] = None
    pacing = data["pacing"]
    if share < 1.0:
        pacing["max_concurrency"] = max(1, round(pacing["max_concurrency"] * share))
        pacing["attempts_per_second"] = max(0.1, pacing["attempts_per_second"] * share)  # the least pacing allows
    return data


def _agent(row: Any) -> dict[str, Any]:
    config = dict(row["config"]) if row is not None else {"name": "forecast"}
    for key in ("context_webhook_url", "context_webhook_secret"):
        config.pop(key, None)
    return config


def _number(row: Any, share: float) -> dict[str, Any]:
    config = dict(row["config"])
    out: dict[str, Any] = {"number": config["number"], "provider": "simulated", "active": config.get("active", True)}
    if config.get("max_calls_per_second"):
        out["max_calls_per_second"] = max(0.1, config["max_calls_per_second"] * share)
    if config.get("max_concurrency"):
        out["max_concurrency"] = max(1, round(config["max_concurrency"] * share))
    return out


def run_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The simulation itself (in the worker process)."""
    return asyncio.run(_simulate(snapshot))


async def _simulate(snap: dict[str, Any]) -> dict[str, Any]:
    now: datetime = snap["now"]
    model = SimulatedSettings.model_validate(snap["model"])
    with tempfile.TemporaryDirectory(prefix="dialwave-forecast-") as tmp:
        url = f"sqlite:///{tmp}/forecast.db"
        create_throwaway_schema(url)  # a throwaway database needs the tables, not their history
        db = Database(url, inline_sqlite=True, throwaway=True)
        clock = VirtualClock(now)
        engine = Engine(db, {"simulated": SimulatedCarrier(clock, model)}, EngineSettings.for_forecast())
        try:
            cid = await _set_up(db, snap, now)
            engine.invalidate(None, None)
            finished = await VirtualRunner(engine, clock).run_until_idle(HORIZON)
            async with db.read() as conn:
                camp = await campaign_repo.campaign_row(conn, cid)
                rows = [c async for c in engine.store.campaign_calls(conn, cid) if c["outcome"] is not None]
        finally:
            await engine.close()
            await db.dispose()
    assert camp is not None
    scale = 1 / snap["share"]
    outcomes: Counter[str] = Counter()
    hourly: dict[datetime, list[int]] = {}
    for call in rows:
        outcomes[call["outcome"]] += 1
        hour = call["started_at"].replace(minute=0, second=0, microsecond=0)
        bucket = hourly.setdefault(hour, [0, 0])
        bucket[0] += 1
        bucket[1] += call["outcome"] in REACHED
    completes_at = camp["completed_at"] if finished and camp["status"] == "completed" else None
    return {
        "completes_at": completes_at,
        "attempts": round(len(rows) * scale),
        "outcomes": {k: round(v * scale) for k, v in sorted(outcomes.items())},
        "hourly": [
            {"hour": hour, "attempts": round(a * scale), "answered": round(r * scale)}
            for hour, (a, r) in sorted(hourly.items())
        ],
        "basis": {**snap["basis"], "finished_within_horizon": finished},
    }


async def _set_up(db: Database, snap: dict[str, Any], now: datetime) -> str:
    """The campaign, its agent and numbers, and its remaining leads with their state, as of `now`."""
    key = await create_key(db, "forecast", ["read", "write"], now)
    org = key.organization_id
    guard = UrlGuard(allow_loopback=True)
    agent = await agent_service.create_agent(db, org, AgentConfig.model_validate(snap["agent"]), now, guard)
    caller_ids = []
    for number in snap["numbers"]:
        created = await number_service.create_number(db, org, PhoneNumberConfig.model_validate(number), now)
        caller_ids.append({"phone_number_id": created["id"]})
    config = {**snap["config"], "agent_id": agent["id"], "caller_ids": caller_ids}
    campaign, _ = await campaign_service.create_campaign(db, org, CampaignConfig.model_validate(config), now, guard)
    cid = str(campaign["id"])
    leads = snap["leads"]
    batch = LeadBatch(
        [
            NewLead(
                f"lead_f{i}",
                lead["phone_number"],
                lead["variables"],
                lead["timezone"],
                lead["agent_overrides"],
                lead.get("region"),
            )
            for i, lead in enumerate(leads)
        ]
    )
    async with db.write() as conn:
        await lead_repo.insert_leads(conn, org, cid, now, batch)
        waiting = {f"lead_f{i}": _state(lead, now) for i, lead in enumerate(leads)}
        await lead_repo.update_leads(conn, waiting)
        retry_pending = sum(1 for state in waiting.values() if state["status"] == "retry_pending")
        await campaign_repo.add_counts(
            conn, cid, total=len(leads), queued=len(leads) - retry_pending, retry_pending=retry_pending
        )
        if snap["dnc"]:
            await dnc_repo.dnc_add(conn, org, snap["dnc"], "copied for the forecast", "forecast", now)
    await campaign_service.act(db, org, cid, "start", now)
    return cid


def _state(lead: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A waiting lead keeps its state; a lead in flight is dialed again from now (its attempt's outcome
    is not known yet)."""
    if lead["status"] == "retry_pending":
        return {
            "status": "retry_pending",
            "attempts": lead["attempts"],
            "retries": lead["retries"],
            "last_outcome": lead["last_outcome"],
            "next_attempt_at": lead["next_attempt_at"],
            "earliest_at": lead["earliest_at"],
        }
    attempts = lead["attempts"] - 1 if lead["status"] in ("dialing", "in_call") else lead["attempts"]
    return {
        "status": "queued",
        "attempts": max(0, attempts),
        "retries": lead["retries"],
        "last_outcome": lead["last_outcome"],
        "next_attempt_at": max(now, lead["next_attempt_at"] or now),
        "earliest_at": lead["earliest_at"],
    }
