"""Consents: a number's permission to be called, by scope; valid until it expires or is revoked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import one_of
from dialwave.store.tables import consents


async def insert_consents(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(consents.insert(), list(rows))


async def get_consent(conn: AsyncConnection, org_id: str, consent_id: str) -> RowMapping | None:
    stmt = sa.select(consents).where(consents.c.id == consent_id, consents.c.organization_id == org_id)
    return (await conn.execute(stmt)).mappings().first()


async def list_consents(
    conn: AsyncConnection, org_id: str, number: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(consents).where(consents.c.organization_id == org_id)
    if number is not None:
        stmt = stmt.where(consents.c.phone_number == number)
    return await page(conn, stmt, consents.c.id, limit, cursor)


def _valid(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        consents.c.revoked_at.is_(None),
        consents.c.captured_at <= now,
        sa.or_(consents.c.expires_at.is_(None), consents.c.expires_at > now),
    )


async def revoke(conn: AsyncConnection, org_id: str, consent_id: str, channel: str, now: datetime) -> bool:
    """False: no such consent, or it was revoked already."""
    result = await conn.execute(
        consents.update()
        .where(consents.c.id == consent_id, consents.c.organization_id == org_id, consents.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_channel=channel)
    )
    return bool(result.rowcount)


async def revoke_numbers(
    conn: AsyncConnection, org_id: str, numbers: Iterable[str], channel: str, now: datetime
) -> int:
    """An opt-out or a do-not-call listing revokes every consent of those numbers at once."""
    revoked = 0
    for condition in one_of(conn, consents.c.phone_number, list(numbers)):
        result = await conn.execute(
            consents.update()
            .where(consents.c.organization_id == org_id, condition, consents.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_channel=channel)
        )
        revoked += result.rowcount
    return revoked


async def consented_until(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], scopes: Sequence[str] | None, now: datetime
) -> dict[str, tuple[str, datetime | None]]:
    """For each of `numbers` with a valid consent (of one of `scopes`; None: any): (the consent used,
    when it expires (None: never)) — the one lasting longest."""
    found: dict[str, tuple[str, datetime | None]] = {}
    for condition in one_of(conn, consents.c.phone_number, list(numbers)):
        stmt = sa.select(consents.c.phone_number, consents.c.id, consents.c.expires_at).where(
            consents.c.organization_id == org_id, condition, _valid(now)
        )
        if scopes is not None:
            stmt = stmt.where(consents.c.scope.in_(scopes))
        for number, consent_id, expires in await conn.execute(stmt):
            held = found.get(number)
            if held is None or (held[1] is not None and (expires is None or expires > held[1])):
                found[number] = (consent_id, expires)
    return found
