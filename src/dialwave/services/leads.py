"""Leads of a campaign: read and remove. (Adding leads is services/lead_import.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from dialwave.domain import lead_states as ls
from dialwave.domain.campaign_config import AgentOverrides
from dialwave.domain.campaign_rules import merge_patch
from dialwave.domain.lead_rows import check_row
from dialwave.errors import Conflict, NotFound, ValidationFailed
from dialwave.services.lead_import import prepare
from dialwave.services.validation import phone_field, validate
from dialwave.store.db import Database
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import leads as repo


async def list_leads(
    db: Database,
    org_id: str,
    campaign_id: str,
    limit: int,
    cursor: str | None,
    *,
    status: str | None = None,
    phone_number: str | None = None,
    outcome: str | None = None,
) -> tuple[Sequence[RowMapping], str | None]:
    """The campaign's leads, narrowed by status, number (any spelling) and last outcome."""
    filters = {"status": status, "last_outcome": outcome}
    if phone_number:
        filters["phone_number"] = phone_field(phone_number, "phone_number")
    async with db.read() as conn:
        if await campaign_repo.get_campaign(conn, org_id, campaign_id) is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        return await repo.list_leads(conn, campaign_id, {k: v for k, v in filters.items() if v}, limit, cursor)


async def get_lead(db: Database, org_id: str, campaign_id: str, lead_id: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.get_lead(conn, org_id, campaign_id, lead_id)
    if row is None:
        raise NotFound(f"no lead '{lead_id}' in campaign '{campaign_id}'")
    return row


async def delete_lead(db: Database, org_id: str, campaign_id: str, lead_id: str) -> None:
    async with db.write() as conn:
        campaign = await campaign_repo.get_campaign(conn, org_id, campaign_id, for_update=True)
        if campaign is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        lead = await repo.get_lead(conn, org_id, campaign_id, lead_id)
        if lead is None:
            raise NotFound(f"no lead '{lead_id}' in campaign '{campaign_id}'")
        status = lead["status"]
        if status in ("dialing", "in_call"):
            raise Conflict("the lead is being dialed: wait for the call to end", code="LEAD_IN_CALL")
        await repo.delete_lead(conn, lead_id)
        await campaign_repo.add_counts(conn, campaign_id, total=-1, **{status: -1})


EDITABLE = ("variables", "timezone", "region", "agent_overrides")


async def update_lead(
    db: Database, org_id: str, campaign_id: str, lead_id: str, patch: dict[str, Any], now: datetime
) -> RowMapping:
    """A merge-patch of a waiting lead's variables, time zone and agent overrides. The lead must still
    give every variable the campaign's templates need; a new time zone re-plans it (it may be dialable
    earlier now, never before its retry interval)."""
    ctx, report = await prepare(db, org_id, campaign_id, None, 1)
    async with db.write() as conn:
        lead = await repo.get_lead(conn, org_id, campaign_id, lead_id)
        if lead is None:
            raise NotFound(f"no lead '{lead_id}' in campaign '{campaign_id}'")
        if lead["status"] not in ls.DUE:
            raise Conflict(
                f"the lead is {lead['status']}: only a queued or retry-pending lead can be changed",
                code="LEAD_NOT_WAITING",
            )
        old = {key: lead[key] for key in EDITABLE}
        new = merge_patch(old, patch)
        new["variables"] = new.get("variables") or {}
        if new.get("agent_overrides") is not None:
            overrides = validate(AgentOverrides, new["agent_overrides"])
            new["agent_overrides"] = overrides.model_dump(mode="json", exclude_none=True)
        checked = check_row(
            ctx, report, 1, lead["phone_number"], new["variables"], new.get("timezone"), None, new.get("region")
        )
        if checked is None:
            problem = report.errors[0].split(": ", 1)[1]
            where = "timezone" if "time zone" in problem else "region" if problem.startswith("region") else "variables"
            problem = problem.removeprefix("region: ")
            raise ValidationFailed(f"{where}: {problem}", fields={where: problem})
        new["region"] = checked.region
        values = {**{k: new.get(k) for k in EDITABLE}, "updated_at": now}
        await repo.update_lead(conn, lead_id, values)
        if new.get("timezone") != old["timezone"] or new.get("region") != old["region"]:
            await repo.replan_lead(conn, lead_id, now)
        campaign = await campaign_repo.get_campaign(conn, org_id, campaign_id)
        common = campaign["lead_common_keys"] if campaign is not None else None
        if common is not None and not set(common) <= set(new["variables"]):
            await campaign_repo.set_common_keys(conn, campaign_id, sorted(set(common) & set(new["variables"])))
        updated = await repo.get_lead(conn, org_id, campaign_id, lead_id)
    assert updated is not None
    return updated
