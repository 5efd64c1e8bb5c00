"""The dispatcher's queries: claims, guard lookups, batched state writes, recovery.

Everything here takes and returns plain values in batches: one statement per batch, never one per lead."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.store.repositories.leads import _one_of, dnc_added, sqlite_time
from dialwave.store.tables import agent_versions, calls, campaigns, leads, organizations
from dialwave.store.types import UTCDateTime

LIVE_CALL = ("pending", "dialing", "ringing", "in_call")
_LEAD_CLAIM_COLUMNS = (
    leads.c.id,
    leads.c.organization_id,
    leads.c.campaign_id,
    leads.c.phone_number,
    leads.c.variables,
    leads.c.timezone,
    leads.c.agent_overrides,
    leads.c.status,
    leads.c.attempts,
    leads.c.retries,
    leads.c.next_attempt_at,
)


async def engine_campaigns(conn: AsyncConnection) -> Sequence[RowMapping]:
    """Campaigns the engine has work for: active, scheduled, and paused ones with calls in flight."""
    stmt = sa.select(campaigns).where(campaigns.c.status.in_(("active", "scheduled", "paused")))
    return (await conn.execute(stmt)).mappings().all()


async def campaign_row(conn: AsyncConnection, campaign_id: str) -> RowMapping | None:
    return (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).mappings().first()


async def org_caps(conn: AsyncConnection, org_ids: Iterable[str]) -> dict[str, int | None]:
    ids = list(set(org_ids))
    if not ids:
        return {}
    stmt = sa.select(organizations.c.id, organizations.c.max_concurrency).where(organizations.c.id.in_(ids))
    return {row.id: row.max_concurrency for row in await conn.execute(stmt)}


async def agent_snapshot(conn: AsyncConnection, agent_id: str, version: int) -> dict[str, Any] | None:
    stmt = sa.select(agent_versions.c.snapshot).where(
        agent_versions.c.agent_id == agent_id, agent_versions.c.version == version
    )
    snapshot: dict[str, Any] | None = await conn.scalar(stmt)
    return snapshot


async def next_due_at(conn: AsyncConnection, campaign_id: str) -> datetime | None:
    stmt = (
        sa.select(leads.c.next_attempt_at)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE))
        .order_by(leads.c.next_attempt_at)
        .limit(1)
    )
    value: datetime | None = await conn.scalar(stmt)
    return value


async def claim_due(conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> Sequence[RowMapping]:
    """Due leads in next_attempt_at order, locked for this transaction (PostgreSQL: SKIP LOCKED, so
    workers never wait on each other; SQLite: the single writer transaction holds them)."""
    stmt = (
        sa.select(*_LEAD_CLAIM_COLUMNS)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE), leads.c.next_attempt_at <= now)
        .order_by(leads.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return (await conn.execute(stmt)).mappings().all()


async def attempts_since(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    """Start times of the organization's attempts to each number since `since` (any campaign)."""
    found: dict[str, list[datetime]] = {}
    for condition in _one_of(conn, calls.c.to_number, numbers):
        stmt = sa.select(calls.c.to_number, calls.c.started_at).where(
            calls.c.organization_id == org_id, condition, calls.c.started_at >= since
        )
        for number, started in await conn.execute(stmt):
            found.setdefault(number, []).append(started)
    return found


async def _latest(
    conn: AsyncConnection, number: sa.Column[str], at: sa.Column[datetime], numbers: Sequence[str], *where: Any
) -> dict[str, datetime]:
    """The latest `at` per number among rows matching `where`."""
    found: dict[str, datetime] = {}
    for condition in _one_of(conn, number, numbers):
        latest = sa.func.max(at, type_=UTCDateTime())
        stmt = sa.select(number, latest).where(condition, *where).group_by(number)
        found.update({n: t for n, t in await conn.execute(stmt) if t is not None})
    return found


async def last_answered(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When each number last answered (any campaign of the organization), if since `since`."""
    return await _latest(
        conn,
        calls.c.to_number,
        calls.c.answered_at,
        numbers,
        calls.c.organization_id == org_id,
        calls.c.started_at >= since,
        calls.c.outcome.in_(("answered", "short_duration", "opted_out")),
    )


async def last_completed(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When a lead for each number last completed in any campaign of the organization, if since `since`."""
    return await _latest(
        conn,
        leads.c.phone_number,
        leads.c.finished_at,
        numbers,
        leads.c.organization_id == org_id,
        leads.c.status == ls.COMPLETED,
        leads.c.finished_at >= since,
    )


async def insert_calls(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(calls.insert(), rows)


async def delete_calls(conn: AsyncConnection, call_ids: Sequence[str]) -> None:
    for condition in _one_of(conn, calls.c.id, call_ids):
        await conn.execute(calls.delete().where(condition, calls.c.status == "pending"))


def _grouped(rows: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in rows.items():
        key = tuple(sorted(values))
        groups.setdefault(key, []).append({"_id": row_id, **{f"v_{k}": v for k, v in values.items()}})
    return groups


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite types would bind it (UTC text times, JSON text, 0/1)."""
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


async def _update_many(conn: AsyncConnection, table: sa.Table, rows: dict[str, dict[str, Any]]) -> None:
    """UPDATE table SET ... WHERE id = ..., one executemany per set of columns. On SQLite the rows go
    to the driver as plain tuples: SQLAlchemy's per-row parameter processing costs more than the update."""
    for columns, params in _grouped(rows).items():
        if conn.dialect.name == "sqlite":
            sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
            tuples = [(*(_sqlite_value(p[f"v_{c}"]) for c in columns), p["_id"]) for p in params]
            await conn.exec_driver_sql(sql, tuples)
            continue
        stmt = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
        )
        await conn.execute(stmt, params)


async def update_leads(conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
    await _update_many(conn, leads, rows)


async def update_calls(conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
    await _update_many(conn, calls, rows)


async def live_calls(conn: AsyncConnection, campaign_ids: Sequence[str]) -> Sequence[RowMapping]:
    """Calls between intent and hang-up of these campaigns."""
    found: list[RowMapping] = []
    for condition in _one_of(conn, calls.c.campaign_id, campaign_ids):
        stmt = sa.select(calls).where(condition, calls.c.status.in_(LIVE_CALL))
        found.extend((await conn.execute(stmt)).mappings().all())
    return found


_LEASE_KEY = "hashtextextended(:campaign_id, 0)"


async def try_lease(conn: AsyncConnection, campaign_id: str) -> bool:
    """PostgreSQL: take the campaign's dispatch lease (a session advisory lock) if no worker holds it.
    It lasts as long as the session: a worker that dies loses its connection, and its leases."""
    taken = await conn.scalar(sa.text(f"SELECT pg_try_advisory_lock({_LEASE_KEY})"), {"campaign_id": campaign_id})
    return bool(taken)


async def release_lease(conn: AsyncConnection, campaign_id: str) -> None:
    await conn.execute(sa.text(f"SELECT pg_advisory_unlock({_LEASE_KEY})"), {"campaign_id": campaign_id})


async def lead_rows(conn: AsyncConnection, lead_ids: Sequence[str]) -> dict[str, RowMapping]:
    found: dict[str, RowMapping] = {}
    for condition in _one_of(conn, leads.c.id, lead_ids):
        for row in (await conn.execute(sa.select(*_LEAD_CLAIM_COLUMNS).where(condition))).mappings():
            found[row["id"]] = row
    return found


async def put_on_dnc(
    conn: AsyncConnection, org_id: str, number: str, reason: str, source: str, now: datetime
) -> tuple[bool, dict[str, dict[str, int]]]:
    """List `number` on the organization's DNC list and skip its due leads in every campaign. Returns
    (it was not listed before, the counter changes per campaign: {campaign_id: {old status: -n, skipped: +n}})."""
    added = bool(await dnc_added(conn, org_id, [number], reason, source, now))
    moved = await _skip_number_everywhere(conn, org_id, number, "on the do-not-call list", now)
    deltas = {cid: {**{s: -n for s, n in per.items()}, ls.SKIPPED: sum(per.values())} for cid, per in moved.items()}
    return added, deltas


async def _skip_number_everywhere(
    conn: AsyncConnection, org_id: str, number: str, reason: str, now: datetime
) -> dict[str, dict[str, int]]:
    """Due leads of `number` in every campaign of the organization become skipped.
    Returns {campaign_id: {old status: how many}}."""
    stmt = sa.select(leads.c.id, leads.c.campaign_id, leads.c.status).where(
        leads.c.organization_id == org_id, leads.c.phone_number == number, leads.c.status.in_(ls.DUE)
    )
    moved: dict[str, dict[str, int]] = {}
    ids = []
    for lead_id, campaign_id, status in await conn.execute(stmt):
        ids.append(lead_id)
        per = moved.setdefault(campaign_id, {})
        per[status] = per.get(status, 0) + 1
    if ids:
        await conn.execute(
            leads.update()
            .where(leads.c.id.in_(ids))
            .values(status=ls.SKIPPED, reason=reason, next_attempt_at=None, finished_at=now, updated_at=now)
        )
    return moved


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
