"""Why a campaign waits: when it dials next and, when that is not now, the reason; with its warnings
(a stale do-not-call list) and its 30-day abandonment rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import campaign_rules as rules
from dialwave.domain.abandonment import NO_ABANDONMENT, AbandonRate
from dialwave.domain.abandonment import WINDOW as ABANDON_WINDOW
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes, not_before, waiting_reason
from dialwave.domain.dnc_file import stale
from dialwave.store.db import Database
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import dnc_lists as dnc_list_repo
from dialwave.store.repositories import leads as lead_repo


@dataclass(frozen=True)
class Waiting:
    """When the campaign dials next and, when that is not now, why it waits."""

    next_dial_at: datetime | None
    reason: str | None
    warnings: tuple[str, ...] = ()  # what the operator should fix (a stale do-not-call list, ...)
    abandonment: AbandonRate = NO_ABANDONMENT  # abandoned calls and live answers over the last 30 days


NOT_WAITING = Waiting(None, None)


async def waiting(db: Database, rows: Sequence[RowMapping], now: datetime) -> dict[str, Waiting]:
    """For each campaign: an active one with nothing in flight says when its first waiting lead is due
    and why not before; a scheduled one when it starts. Others: nothing. With each, its 30-day
    abandonment rate."""
    out: dict[str, Waiting] = {}
    async with db.read() as conn:
        rates = await call_repo.abandon_counts(conn, [r["id"] for r in rows], now - ABANDON_WINDOW)
        for row in rows:
            found = await _waiting(conn, row, now)
            names = row["config"].get("dnc", {}).get("lists") or []
            if names and row["status"] not in rules.FINAL:
                lists = await dnc_list_repo.lists_named(conn, row["organization_id"], names)
                found = replace(found, warnings=tuple(stale(lists, names, now)))
            out[row["id"]] = replace(found, abandonment=rates[row["id"]])
    return out


async def _waiting(conn: AsyncConnection, row: RowMapping, now: datetime) -> Waiting:
    config = CampaignConfig.model_validate(row["config"])
    if row["status"] == rules.SCHEDULED:
        start = not_before(config, config.schedule.start_at)
        return Waiting(start, f"scheduled: starts at {start:%Y-%m-%d %H:%M} UTC" if start else None)
    if row["status"] != rules.ACTIVE or row["count_in_progress"]:
        return NOT_WAITING
    lead = await lead_repo.first_waiting(conn, row["id"])
    if lead is None:
        return Waiting(None, "nothing left to dial")
    due: datetime = lead["next_attempt_at"] or now
    if due <= now:
        return Waiting(due, None)
    if lead["earliest_at"] is not None and lead["earliest_at"] > now:
        return Waiting(due, f"retry after {lead['last_outcome'] or 'the last attempt'}: not before {due:%H:%M} UTC")
    times = CampaignTimes.of(config.schedule, not_before(config, row["started_at"]), config.compliance.unknown_location)
    why = waiting_reason(times, lead["phone_number"], lead["timezone"], now, lead["region"])
    return Waiting(due, why or lead["reason"] or "waiting for a dialable time")
