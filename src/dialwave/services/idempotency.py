"""Idempotency-Key: the key is reserved before the request runs, so a client retrying a request that
is still running gets 409 (IDEMPOTENCY_KEY_IN_USE) instead of a second object, in any process of a
deployment; once the request has answered, the same key and request replay that answer exactly."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import RowMapping

from dialwave.store.db import Database
from dialwave.store.repositories import idempotency as repo

ABANDONED = timedelta(minutes=15)  # a reservation this old belongs to a process that died mid-request


async def reserve(db: Database, org_id: str, key: str, now: datetime, ttl: timedelta) -> RowMapping | None:
    """None: the key is ours, run the request. Else the row holding it: a running request
    (`status_code` None) or a finished one's answer."""
    async with db.write() as conn:
        return await repo.reserve(conn, org_id, key, now, ttl, ABANDONED)


async def complete(
    db: Database,
    org_id: str,
    key: str,
    request_hash: str,
    status: int,
    headers: list[list[str]],
    body: str,
    now: datetime,
    ttl: timedelta,
) -> None:
    async with db.write() as conn:
        await repo.complete(conn, org_id, key, request_hash, status, headers, body, now, ttl)


async def release(db: Database, org_id: str, key: str) -> None:
    async with db.write() as conn:
        await repo.release(conn, org_id, key)
