"""Secrets the server makes once and every process shares (the call-token key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import (
    server_secrets,
)


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


async def session_key(conn: AsyncConnection, now: datetime) -> bytes:
    """The key that signs the dashboard's session cookies (services/sessions.py), shared by every process."""
    import secrets

    return (await server_secret(conn, "dashboard_session_key", lambda: secrets.token_urlsafe(32), now)).encode()
