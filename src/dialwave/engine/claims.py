"""The claim: inside one write transaction, take a campaign's due leads, check every guard for the slot
each would start in, and record the intent to dial (a `pending` call keyed by lead + attempt) for those
that pass. Leads that fail a time guard go back with `next_attempt_at` = when they may be dialed;
leads on a do-not-call list are skipped. No attempt is counted for either."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.caller_ids import Caller, choose
from dialwave.domain.dialable import dial_cap, earliest
from dialwave.domain.pacing import Pacer
from dialwave.engine.state import CampaignState, Reservation
from dialwave.ids import new_ids
from dialwave.store.repositories import dispatch as repo
from dialwave.store.repositories.leads import dnc_contains

DAY = timedelta(hours=24)
CALLER_BUSY_WAIT = timedelta(seconds=5)


@dataclass
class CallerLoad:
    """Per caller id: calls in flight or reserved, and its own pace."""

    busy: int = 0
    pacer: Pacer | None = None


@dataclass
class ClaimContext:
    callers: dict[str, CallerLoad]
    org_free: int | None  # calls the organization may still add (None: no cap)
    number_cap: int | None  # organization-wide attempts per number per 24 h (setting)
    horizon: timedelta


def _available(camp: CampaignState, ctx: ClaimContext, slot: datetime, horizon_end: datetime) -> set[str]:
    free: set[str] = set()
    for caller in camp.callers:
        row = camp.numbers.get(caller.phone_number_id)
        if row is None or not row["active"]:
            continue
        cap = row["config"].get("max_concurrency")
        load = ctx.callers.setdefault(caller.phone_number_id, CallerLoad())
        if cap is not None and load.busy >= cap:
            continue
        if load.pacer is not None and load.pacer.next_slot(slot) > horizon_end:
            continue
        free.add(caller.phone_number_id)
    return free


def _caller_slot(ctx: ClaimContext, caller: Caller, slot: datetime, horizon_end: datetime) -> datetime | None:
    load = ctx.callers[caller.phone_number_id]
    if load.pacer is None:
        return slot
    taken = load.pacer.take(slot, horizon_end, 1)
    return max(taken[0], slot) if taken else None


async def claim(
    conn: AsyncConnection, camp: CampaignState, ctx: ClaimContext, now: datetime, reservations: list[Reservation]
) -> tuple[dict[str, int], int]:
    """Reserve up to the campaign's free concurrency and pace slots, appending to `reservations`.
    Returns (counter deltas, how many leads were decided on)."""
    deltas: dict[str, int] = {}
    decided = 0
    horizon_end = now + ctx.horizon
    most = camp.free if ctx.org_free is None else min(camp.free, ctx.org_free)
    slots = camp.pacer.take(now, horizon_end, most)
    used = 0
    config = camp.config
    custom_dnc = set(config.dnc.custom_numbers) if config.dnc.enabled and "custom" in config.dnc.sources else set()
    check_org_dnc = config.dnc.enabled and "organization" in config.dnc.sources
    in_batch: dict[str, list[datetime]] = {}
    left: dict[str, dict[str, Any]] = {}
    for _ in range(8):  # rounds: leads that fail a guard do not use a slot
        if used >= len(slots):
            break
        rows = await repo.claim_due(conn, camp.id, now, len(slots) - used)
        if not rows:
            break
        numbers = [r["phone_number"] for r in rows]
        on_dnc = (await dnc_contains(conn, camp.org_id, numbers) if check_org_dnc else set()) | (
            custom_dnc & set(numbers)
        )
        capped = [n for n in numbers if dial_cap(n) is not None] if ctx.number_cap is None else numbers
        recent = await repo.attempts_since(conn, camp.org_id, capped, now - DAY) if capped else {}
        waits: dict[str, datetime] = {}
        cool = config.cooldowns
        if cool.after_success_hours:
            hours = timedelta(hours=cool.after_success_hours)
            for number, at in (await repo.last_answered(conn, camp.org_id, numbers, now - hours)).items():
                waits[number] = max(waits.get(number, at), at + hours)
        if cool.after_completion_hours:
            hours = timedelta(hours=cool.after_completion_hours)
            for number, at in (await repo.last_completed(conn, camp.org_id, numbers, now - hours)).items():
                waits[number] = max(waits.get(number, at), at + hours)
        ids = new_ids("call", len(rows))
        round_start = len(reservations)
        for row, call_id in zip(rows, ids, strict=True):
            number = row["phone_number"]
            slot = slots[used] if used < len(slots) else None
            if slot is None:
                break
            decided += 1
            if number in on_dnc:
                _leave(left, camp, row, ls.SKIPPED, None, "on a do-not-call list", now, deltas)
                continue
            start = max(slot, waits.get(number, slot))
            when = earliest(camp.times, number, row["timezone"], start)
            if when is None:
                if camp.times.end_at is not None and start < camp.times.end_at:
                    # it may become dialable after end_at only: leave it for the end-of-campaign sweep
                    _leave(
                        left, camp, row, row["status"], camp.times.end_at, "no dialable time before end_at", now, deltas
                    )
                else:
                    _leave(
                        left, camp, row, ls.SKIPPED, None, "no dialable time in its zone within 14 days", now, deltas
                    )
                continue
            caps = [c for c in (ctx.number_cap, dial_cap(number)) if c is not None]
            if caps:
                cap = min(caps)
                times = sorted(recent.get(number, []) + in_batch.get(number, []))
                window = [t for t in times if t > when - DAY]
                if len(window) >= cap:
                    when = max(when, window[len(window) - cap] + DAY)
            if when > slot:
                _leave(left, camp, row, row["status"], when, "waiting for a dialable time", now, deltas)
                continue
            available = _available(camp, ctx, slot, horizon_end)
            caller = choose(
                config.caller_id_strategy, camp.callers, available, row["id"], row["attempts"] + 1, number, camp.turn
            )
            start_at = _caller_slot(ctx, caller, slot, horizon_end) if caller else None
            if caller is None or start_at is None:
                retry = slot + CALLER_BUSY_WAIT
                _leave(left, camp, row, row["status"], retry, "waiting for a free caller id", now, deltas)
                continue
            camp.turn += 1
            used += 1
            ctx.callers[caller.phone_number_id].busy += 1
            if ctx.org_free is not None:
                ctx.org_free -= 1
            in_batch.setdefault(number, []).append(start_at)
            reservations.append(
                Reservation(
                    start_at, call_id, camp.id, camp.org_id, dict(row), row["attempts"] + 1, caller, row["status"]
                )
            )
        if left:
            await repo.update_leads(conn, left)
            left.clear()
        await _record(conn, camp, reservations[round_start:], now, deltas)
    camp.pacer.give_back(len(slots) - used)
    camp.reserved += used
    return deltas, decided


def _leave(
    left: dict[str, dict[str, Any]],
    camp: CampaignState,
    row: Any,
    status: str,
    when: datetime | None,
    reason: str,
    now: datetime,
    deltas: dict[str, int],
) -> None:
    """A lead that is not dialed now: back to the queue at `when`, or to a final status."""
    values: dict[str, Any] = {"status": status, "next_attempt_at": when, "reason": reason, "updated_at": now}
    if status in ls.FINAL:
        values["finished_at"] = now
        deltas[row["status"]] = deltas.get(row["status"], 0) - 1
        deltas[status] = deltas.get(status, 0) + 1
    left[row["id"]] = values


async def _record(
    conn: AsyncConnection, camp: CampaignState, pending: list[Reservation], now: datetime, deltas: dict[str, int]
) -> None:
    """The intent to dial, before any carrier hears of it: pending call rows and dialing leads."""
    if not pending:
        return
    await repo.insert_calls(
        conn,
        [
            {
                "id": r.call_id,
                "organization_id": r.org_id,
                "campaign_id": r.campaign_id,
                "lead_id": r.lead["id"],
                "attempt": r.attempt,
                "from_number": r.caller.number,
                "to_number": r.lead["phone_number"],
                "caller_id": r.caller.phone_number_id,
                "agent_version": camp.agent_version,
                "status": "pending",
                "started_at": r.slot,
                "created_at": now,
            }
            for r in pending
        ],
    )
    await repo.update_leads(
        conn,
        {
            r.lead["id"]: {"status": ls.DIALING, "attempts": r.attempt, "reason": None, "updated_at": now}
            for r in pending
        },
    )
    for r in pending:
        deltas[r.prior_status] = deltas.get(r.prior_status, 0) - 1
    deltas["in_progress"] = deltas.get("in_progress", 0) + len(pending)
