"""Dispatch leases: on PostgreSQL each campaign is dispatched by one worker at a time, through a
session advisory lock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_LEASE_KEY = "hashtextextended(:campaign_id, 0)"


async def try_lease(conn: AsyncConnection, campaign_id: str) -> bool:
    """PostgreSQL: take the campaign's dispatch lease (a session advisory lock) if no worker holds it.
    It lasts as long as the session: a worker that dies loses its connection, and its leases."""
    taken = await conn.scalar(sa.text(f"SELECT pg_try_advisory_lock({_LEASE_KEY})"), {"campaign_id": campaign_id})
    return bool(taken)


async def release_lease(conn: AsyncConnection, campaign_id: str) -> None:
    await conn.execute(sa.text(f"SELECT pg_advisory_unlock({_LEASE_KEY})"), {"campaign_id": campaign_id})
