"""Organizations, API keys and stored idempotent responses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.ids import new_id
from dialwave.store.tables import api_keys, idempotency_keys, organizations, server_secrets


async def get_or_create_org(conn: AsyncConnection, name: str, now: datetime) -> str:
    found = await conn.scalar(sa.select(organizations.c.id).where(organizations.c.name == name))
    if found:
        return str(found)
    org_id = new_id("org")
    await conn.execute(organizations.insert().values(id=org_id, name=name, created_at=now))
    return org_id


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


async def set_max_concurrency(conn: AsyncConnection, org_name: str, value: int | None) -> bool:
    result = await conn.execute(
        organizations.update().where(organizations.c.name == org_name).values(max_concurrency=value)
    )
    return bool(result.rowcount)


async def set_twilio(conn: AsyncConnection, org_name: str, twilio: dict[str, str] | None) -> bool:
    """Organization-wide Twilio credentials (used by its Twilio numbers that carry none of their own)."""
    row = (await conn.execute(sa.select(organizations.c.settings).where(organizations.c.name == org_name))).first()
    if row is None:
        return False
    settings = dict(row[0] or {})
    if twilio is None:
        settings.pop("twilio", None)
    else:
        settings["twilio"] = twilio
    await conn.execute(organizations.update().where(organizations.c.name == org_name).values(settings=settings))
    return True


async def org_twilio(conn: AsyncConnection, org_ids: list[str]) -> dict[str, dict[str, str]]:
    """{organization id: its Twilio credentials}, for those that have them."""
    if not org_ids:
        return {}
    stmt = sa.select(organizations.c.id, organizations.c.settings).where(organizations.c.id.in_(org_ids))
    return {r.id: r.settings["twilio"] for r in (await conn.execute(stmt)) if r.settings and r.settings.get("twilio")}


async def server_secret(conn: AsyncConnection, name: str, make: Any, now: datetime) -> str:
    """The named server secret, created with `make()` the first time (the first writer wins)."""
    found = await conn.scalar(sa.select(server_secrets.c.value).where(server_secrets.c.name == name))
    if found is not None:
        return str(found)
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(server_secrets).values(name=name, value=make(), created_at=now).on_conflict_do_nothing()
    await conn.execute(stmt)
    return str(await conn.scalar(sa.select(server_secrets.c.value).where(server_secrets.c.name == name)))


async def call_token_key(conn: AsyncConnection, now: datetime) -> bytes:
    """The key of per-call tokens (domain/call_tokens.py), shared by every process."""
    import secrets

    return (await server_secret(conn, "call_token_key", lambda: secrets.token_urlsafe(32), now)).encode()
