"""API keys (stored as hashes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.ids import new_id
from dialwave.store.tables import (
    api_keys,
    organizations,
)


async def insert_key(
    conn: AsyncConnection, org_id: str, prefix: str, key_hash: str, scopes: list[str], name: str | None, now: datetime
) -> str:
    key_id = new_id("key")
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            organization_id=org_id,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
            name=name,
            created_at=now,
        )
    )
    return key_id


async def find_active_key(conn: AsyncConnection, key_hash: str) -> RowMapping | None:
    stmt = sa.select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    return (await conn.execute(stmt)).mappings().first()


async def find_active_key_by_id(conn: AsyncConnection, key_id: str) -> RowMapping | None:
    """The key of this id while it is not revoked (the dashboard's sessions re-check it on each request)."""
    stmt = sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    return (await conn.execute(stmt)).mappings().first()


async def revoke_key(conn: AsyncConnection, key_id: str, now: datetime) -> bool:
    result = await conn.execute(
        api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)


async def list_keys(conn: AsyncConnection, org_name: str | None) -> list[dict[str, Any]]:
    stmt = sa.select(api_keys, organizations.c.name.label("organization")).join(organizations)
    if org_name:
        stmt = stmt.where(organizations.c.name == org_name)
    return [dict(r) for r in (await conn.execute(stmt.order_by(api_keys.c.id))).mappings()]
