"""Stored answers of requests sent with an Idempotency-Key."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import (
    idempotency_keys,
)


async def get_idempotent(conn: AsyncConnection, org_id: str, key: str, not_before: datetime) -> RowMapping | None:
    stmt = sa.select(idempotency_keys).where(
        idempotency_keys.c.organization_id == org_id,
        idempotency_keys.c.key == key,
        idempotency_keys.c.created_at >= not_before,
    )
    return (await conn.execute(stmt)).mappings().first()


async def put_idempotent(
    conn: AsyncConnection,
    org_id: str,
    key: str,
    request_hash: str,
    status: int,
    body: str,
    now: datetime,
    ttl: timedelta,
) -> None:
    await conn.execute(
        idempotency_keys.delete().where(
            sa.or_(
                idempotency_keys.c.created_at < now - ttl,
                sa.and_(idempotency_keys.c.organization_id == org_id, idempotency_keys.c.key == key),
            )
        )
    )
    await conn.execute(
        idempotency_keys.insert().values(
            organization_id=org_id,
            key=key,
            request_hash=request_hash,
            status_code=status,
            response_body=body,
            created_at=now,
        )
    )
