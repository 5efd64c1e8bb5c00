"""Leads of a campaign: read and remove. (Adding leads is services/lead_import.py.)"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import RowMapping

from dialwave.errors import Conflict, NotFound
from dialwave.services.validation import phone_field
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
