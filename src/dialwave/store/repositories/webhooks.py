"""Webhook endpoints, the event outbox, deliveries and their attempts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import sqlite_time
from dialwave.store.tables import events, webhook_attempts, webhook_deliveries, webhook_endpoints

# -- endpoints -------------------------------------------------------------------------------------------


async def insert_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(webhook_endpoints.insert().values(**values))


async def get_endpoint(conn: AsyncConnection, org_id: str, endpoint_id: str) -> RowMapping | None:
    stmt = sa.select(webhook_endpoints).where(
        webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.organization_id == org_id
    )
    return (await conn.execute(stmt)).mappings().first()


async def campaign_endpoint(conn: AsyncConnection, campaign_id: str) -> RowMapping | None:
    stmt = sa.select(webhook_endpoints).where(webhook_endpoints.c.campaign_id == campaign_id)
    return (await conn.execute(stmt)).mappings().first()


async def list_endpoints(
    conn: AsyncConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(webhook_endpoints).where(webhook_endpoints.c.organization_id == org_id)
    return await page(conn, stmt, webhook_endpoints.c.id, limit, cursor)


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, values: dict[str, Any]) -> None:
    await conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id).values(**values))


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str) -> None:
    await conn.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id))


async def orgs_listening(conn: AsyncConnection, org_ids: Iterable[str]) -> set[str]:
    """The organizations (of `org_ids`) with at least one enabled endpoint: only they get events written."""
    wanted = list(set(org_ids))
    if not wanted:
        return set()
    stmt = (
        sa.select(webhook_endpoints.c.organization_id)
        .where(webhook_endpoints.c.organization_id.in_(wanted), webhook_endpoints.c.enabled.is_(True))
        .distinct()
    )
    return set((await conn.execute(stmt)).scalars().all())


async def enabled_endpoints(conn: AsyncConnection, org_ids: Iterable[str]) -> Sequence[RowMapping]:
    stmt = sa.select(webhook_endpoints).where(
        webhook_endpoints.c.organization_id.in_(list(set(org_ids))), webhook_endpoints.c.enabled.is_(True)
    )
    return (await conn.execute(stmt)).mappings().all()


# -- the outbox ------------------------------------------------------------------------------------------


_EVENT_COLUMNS = ("id", "organization_id", "campaign_id", "type", "payload", "created_at", "fanned_out")
_SQLITE_EVENTS = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"


async def insert_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """SQLite takes plain tuples through the driver's executemany (the engine writes several events per
    call; SQLAlchemy's per-value processing cost more than the insert)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        params = [
            (r["id"], r["organization_id"], r["campaign_id"], r["type"], r["payload"], sqlite_time(r["created_at"]), 0)
            for r in rows
        ]
        await conn.exec_driver_sql(_SQLITE_EVENTS, params)
        return
    await conn.execute(events.insert(), rows)


async def unsent_events(conn: AsyncConnection, limit: int) -> Sequence[RowMapping]:
    stmt = (
        sa.select(events.c.seq, events.c.id, events.c.organization_id, events.c.campaign_id, events.c.type)
        .where(events.c.fanned_out.is_(False))
        .order_by(events.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return (await conn.execute(stmt)).mappings().all()


async def mark_fanned_out(conn: AsyncConnection, seqs: list[int]) -> None:
    if seqs:
        await conn.execute(events.update().where(events.c.seq.in_(seqs)).values(fanned_out=True))


# -- deliveries ------------------------------------------------------------------------------------------


async def insert_deliveries(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(webhook_deliveries.insert(), rows)


async def claim_deliveries(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
) -> Sequence[RowMapping]:
    """Due deliveries of enabled endpoints, with what sending needs. Each is leased: it is due again at
    `lease_until` unless its result is recorded first (a crash between send and record re-sends)."""
    d, e = webhook_deliveries, webhook_endpoints
    pick = (
        sa.select(d.c.id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= now, e.c.enabled.is_(True))
        .order_by(d.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(of=d, skip_locked=True)
    ids = list((await conn.execute(pick)).scalars().all())
    if not ids:
        return []
    await conn.execute(d.update().where(d.c.id.in_(ids)).values(next_attempt_at=lease_until, attempts=d.c.attempts + 1))
    stmt = (
        sa.select(
            d.c.id,
            d.c.attempts,
            d.c.failures,
            d.c.endpoint_id,
            d.c.event_id,
            d.c.organization_id,
            e.c.url,
            e.c.secrets,
            events.c.payload,
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .join(events, events.c.id == d.c.event_id)
        .where(d.c.id.in_(ids))
        .order_by(events.c.seq)
    )
    return (await conn.execute(stmt)).mappings().all()


async def record_results(
    conn: AsyncConnection, updates: list[dict[str, Any]], attempts: list[dict[str, Any]], disabled: dict[str, str]
) -> None:
    """Each delivery's new state, its attempt rows, and the endpoints that answered 410 (now disabled)."""
    d = webhook_deliveries
    if updates:  # one executemany: every update sets the same columns
        columns = [k for k in updates[0] if k != "id"]
        update = d.update().where(d.c.id == sa.bindparam("b_id")).values({c: sa.bindparam(f"b_{c}") for c in columns})
        await conn.execute(update, [{f"b_{k}": v for k, v in u.items()} for u in updates])
    if attempts:  # a delivery whose endpoint was deleted meanwhile is gone, and so is its log
        ids = [a["delivery_id"] for a in attempts]
        alive = set((await conn.execute(sa.select(d.c.id).where(d.c.id.in_(ids)))).scalars().all())
        kept = [a for a in attempts if a["delivery_id"] in alive]
        if kept:
            await conn.execute(webhook_attempts.insert(), kept)
    for endpoint_id, reason in disabled.items():
        await conn.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason)
        )


async def next_delivery_at(conn: AsyncConnection) -> datetime | None:
    d, e = webhook_deliveries, webhook_endpoints
    stmt = (
        sa.select(sa.func.min(d.c.next_attempt_at))
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.status == "pending", e.c.enabled.is_(True))
    )
    value: datetime | None = (await conn.execute(stmt)).scalar()
    return value


async def has_unsent(conn: AsyncConnection) -> bool:
    stmt = sa.select(events.c.seq).where(events.c.fanned_out.is_(False)).limit(1)
    return (await conn.execute(stmt)).first() is not None


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(webhook_deliveries.c.status == status)
    return await page(conn, stmt, webhook_deliveries.c.id, limit, cursor)


async def attempts_of(conn: AsyncConnection, delivery_ids: list[str]) -> dict[str, list[RowMapping]]:
    out: dict[str, list[RowMapping]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    stmt = (
        sa.select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)
    )
    for row in (await conn.execute(stmt)).mappings():
        out[row["delivery_id"]].append(row)
    return out


async def get_delivery(conn: AsyncConnection, endpoint_id: str, delivery_id: str) -> RowMapping | None:
    stmt = sa.select(webhook_deliveries).where(
        webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.endpoint_id == endpoint_id
    )
    return (await conn.execute(stmt)).mappings().first()


async def requeue_delivery(conn: AsyncConnection, delivery_id: str, now: datetime) -> None:
    """A manual re-send: the delivery is due now, with a fresh retry schedule and the same event id."""
    await conn.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id == delivery_id)
        .values(status="pending", failures=0, next_attempt_at=now)
    )


async def backlog(conn: AsyncConnection) -> tuple[int, int]:
    """(deliveries pending to enabled endpoints, events not fanned out yet): what webhook delivery has
    still to do (both read through their partial indexes)."""
    d, e = webhook_deliveries, webhook_endpoints
    pending = sa.select(sa.func.count()).select_from(d.join(e, e.c.id == d.c.endpoint_id))
    pending = pending.where(d.c.status == "pending", e.c.enabled.is_(True))
    unsent = sa.select(sa.func.count()).select_from(events).where(events.c.fanned_out.is_(False))
    return int((await conn.execute(pending)).scalar_one()), int((await conn.execute(unsent)).scalar_one())
