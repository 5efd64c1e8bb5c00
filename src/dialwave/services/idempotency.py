"""Idempotency-Key: the answer to a request is remembered per organization and key for a while, so a
client that sends the same request again gets the same answer instead of a second object."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import RowMapping

from dialwave.store.db import Database
from dialwave.store.repositories import idempotency as repo


async def recall(db: Database, org_id: str, key: str, now: datetime, ttl: timedelta) -> RowMapping | None:
    """The stored answer to `key`, if one is younger than `ttl`."""
    async with db.read() as conn:
        return await repo.get_idempotent(conn, org_id, key, now - ttl)


async def remember(
    db: Database, org_id: str, key: str, request_hash: str, status: int, body: str, now: datetime, ttl: timedelta
) -> None:
    """Store the answer to `key` (and forget answers older than `ttl`)."""
    async with db.write() as conn:
        await repo.put_idempotent(conn, org_id, key, request_hash, status, body, now, ttl)
