"""Idempotency keys: reserved before the request runs, then holding its answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import idempotency_keys as keys


def _this(org_id: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(keys.c.organization_id == org_id, keys.c.key == key)


async def reserve(
    conn: AsyncConnection, org_id: str, key: str, now: datetime, ttl: timedelta, abandoned: timedelta
) -> RowMapping | None:
    """Reserve `key` for a request about to run; None when reserved, else the row that holds it (a
    request still running, or a finished one's answer). An answer older than `ttl` or a reservation
    older than `abandoned` (its process died) no longer holds it."""
    expired = sa.or_(
        keys.c.created_at < now - ttl, sa.and_(keys.c.status_code.is_(None), keys.c.created_at < now - abandoned)
    )
    await conn.execute(keys.delete().where(_this(org_id, key), expired))
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(keys)
        .values(organization_id=org_id, key=key, request_hash="", created_at=now)
        .on_conflict_do_nothing()
        .returning(keys.c.key)
    )
    if (await conn.execute(stmt)).first() is not None:
        return None
    return (await conn.execute(sa.select(keys).where(_this(org_id, key)))).mappings().first()


async def complete(
    conn: AsyncConnection,
    org_id: str,
    key: str,
    request_hash: str,
    status: int,
    headers: list[list[str]],
    body: str,
    now: datetime,
    ttl: timedelta,
) -> None:
    """Store the answer of the request holding the reservation (and forget every expired answer)."""
    values: dict[str, Any] = {
        "request_hash": request_hash,
        "status_code": status,
        "response_headers": headers,
        "response_body": body,
    }
    await conn.execute(keys.update().where(_this(org_id, key), keys.c.status_code.is_(None)).values(**values))
    await conn.execute(keys.delete().where(keys.c.created_at < now - ttl))


async def release(conn: AsyncConnection, org_id: str, key: str) -> None:
    """The request holding the reservation gave no answer worth replaying: the key is free again."""
    await conn.execute(keys.delete().where(_this(org_id, key), keys.c.status_code.is_(None)))
