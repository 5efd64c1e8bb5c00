"""Campaign rows, their status moves and their maintained counters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.campaign_rules import FINAL
from dialwave.domain.lead_states import counter
from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import driver_rows
from dialwave.store.tables import campaigns, leads, webhook_endpoints

COUNTERS = ("total", "queued", "in_progress", "completed", "failed", "skipped", "retry_pending", "cancelled")


async def insert_campaign(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(campaigns.insert().values(**values))


def _with_endpoint() -> sa.Select[Any]:
    """Campaign rows with the id of the campaign's own webhook endpoint (null without webhook.url)."""
    endpoint = (
        sa.select(webhook_endpoints.c.id).where(webhook_endpoints.c.campaign_id == campaigns.c.id).scalar_subquery()
    )
    return sa.select(campaigns, endpoint.label("webhook_endpoint_id"))


async def get_campaign(
    conn: AsyncConnection, org_id: str, campaign_id: str, *, for_update: bool = False
) -> RowMapping | None:
    stmt = _with_endpoint().where(campaigns.c.id == campaign_id, campaigns.c.organization_id == org_id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row: RowMapping | None = (await conn.execute(stmt)).mappings().first()
    return row


async def list_campaigns(
    conn: AsyncConnection, org_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = _with_endpoint().where(campaigns.c.organization_id == org_id)
    if status:
        stmt = stmt.where(campaigns.c.status == status)
    return await page(conn, stmt, campaigns.c.id, limit, cursor)


async def open_campaign_configs(conn: AsyncConnection, org_id: str) -> Sequence[RowMapping]:
    stmt = sa.select(campaigns.c.id, campaigns.c.config).where(
        campaigns.c.organization_id == org_id, campaigns.c.status.not_in(FINAL)
    )
    return (await conn.execute(stmt)).mappings().all()


async def name_taken(conn: AsyncConnection, org_id: str, name: str, except_id: str | None = None) -> bool:
    stmt = sa.select(campaigns.c.id).where(campaigns.c.organization_id == org_id, campaigns.c.name == name)
    if except_id:
        stmt = stmt.where(campaigns.c.id != except_id)
    return (await conn.scalar(stmt)) is not None


async def update_campaign(
    conn: AsyncConnection, campaign_id: str, expected_version: int, values: dict[str, Any]
) -> bool:
    """Write `values` and bump the version, if the row is still at `expected_version`."""
    result = await conn.execute(
        campaigns.update()
        .where(campaigns.c.id == campaign_id, campaigns.c.version == expected_version)
        .values(version=expected_version + 1, **values)
    )
    return bool(result.rowcount)


async def delete_campaign(conn: AsyncConnection, campaign_id: str) -> None:
    await conn.execute(campaigns.delete().where(campaigns.c.id == campaign_id))


async def add_counts(conn: AsyncConnection, campaign_id: str, **deltas: int) -> None:
    if conn.dialect.name == "sqlite":  # the dispatcher's every claim and commit: the driver alone
        changed = [(f"count_{k}", v) for k, v in deltas.items() if v]
        if changed:
            sets = ", ".join(f"{column} = {column} + ?" for column, _ in changed)
            await driver_rows(
                conn, f"UPDATE campaigns SET {sets} WHERE id = ?", (*(v for _, v in changed), campaign_id)
            )
        return
    values = {f"count_{k}": campaigns.c[f"count_{k}"] + v for k, v in deltas.items() if v}
    if values:
        await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(**values))


async def recount(conn: AsyncConnection, campaign_id: str) -> None:
    """Set a campaign's counters from its leads (after a commit whose outcome is unknown: adding its
    deltas again could count them twice)."""
    rows = await conn.execute(
        sa.select(leads.c.status, sa.func.count()).where(leads.c.campaign_id == campaign_id).group_by(leads.c.status)
    )
    values = dict.fromkeys(COUNTERS, 0)
    for status, n in rows.all():
        values[counter(status)] += n
        values["total"] += n
    await conn.execute(
        campaigns.update().where(campaigns.c.id == campaign_id).values(**{f"count_{k}": v for k, v in values.items()})
    )


async def set_common_keys(conn: AsyncConnection, campaign_id: str, keys: list[str] | None) -> None:
    await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(lead_common_keys=keys))


def counts_of(row: RowMapping) -> dict[str, int]:
    return {name: int(row[f"count_{name}"]) for name in COUNTERS}


def leads_left(row: RowMapping) -> int:
    """Leads the campaign may still dial: queued, retry-pending, or claimed and in progress."""
    return int(row["count_queued"] + row["count_retry_pending"] + row["count_in_progress"])


async def engine_campaigns(conn: AsyncConnection) -> Sequence[RowMapping]:
    """Campaigns the engine has work for: active, scheduled, and paused ones with calls in flight."""
    stmt = sa.select(campaigns).where(campaigns.c.status.in_(("active", "scheduled", "paused")))
    return (await conn.execute(stmt)).mappings().all()


async def campaign_row(conn: AsyncConnection, campaign_id: str) -> RowMapping | None:
    return (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).mappings().first()


async def set_campaign_status(
    conn: AsyncConnection, campaign_id: str, expected: str, status: str, now: datetime, reason: str | None
) -> bool:
    """Move a campaign from `expected` to `status` (bumping its version); False if it moved meanwhile."""
    values: dict[str, Any] = {
        "status": status,
        "status_reason": reason,
        "updated_at": now,
        "version": campaigns.c.version + 1,
    }
    if status in ("completed", "cancelled"):
        values["completed_at"] = now
    if status == "active":
        values["started_at"] = sa.func.coalesce(campaigns.c.started_at, now)
    result = await conn.execute(
        campaigns.update().where(campaigns.c.id == campaign_id, campaigns.c.status == expected).values(**values)
    )
    return bool(result.rowcount)


async def lock_campaigns(conn: AsyncConnection, campaign_ids: Sequence[str]) -> dict[str, str]:
    """Current status of campaigns, read under a share lock so a pause waits for this transaction.
    SQLite has one engine, in the API's process: a pause cannot commit during this transaction, and the
    engine hears of it in-process (invalidate) before the pause answers; no query needed."""
    if not campaign_ids:
        return {}
    if conn.dialect.name != "postgresql":
        return dict.fromkeys(campaign_ids, "active")  # the caller's in-process state is authoritative
    stmt = sa.select(campaigns.c.id, campaigns.c.status).where(campaigns.c.id.in_(list(campaign_ids)))
    stmt = stmt.with_for_update(read=True)
    return {row.id: row.status for row in await conn.execute(stmt)}


async def finish_replan(conn: AsyncConnection, campaign_id: str, since: datetime) -> None:
    """The re-plan asked for at `since` is done (a later edit's request stays)."""
    await conn.execute(
        campaigns.update()
        .where(campaigns.c.id == campaign_id, campaigns.c.replan_from == since)
        .values(replan_from=None)
    )


async def latest_named(conn: AsyncConnection, org_id: str, prefix: str) -> RowMapping | None:
    """The organization's newest campaign whose name starts with `prefix`."""
    stmt = (
        sa.select(campaigns)
        .where(campaigns.c.organization_id == org_id, campaigns.c.name.startswith(prefix, autoescape=True))
        .order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).mappings().first()
