"""Phone numbers (caller ids) and their carrier settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import equal_to
from dialwave.store.tables import (
    calls,
    phone_numbers,
)


async def insert_number(
    conn: AsyncConnection, number_id: str, org_id: str, config: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        phone_numbers.insert().values(
            id=number_id,
            organization_id=org_id,
            number=config["number"],
            provider=config["provider"],
            active=config["active"],
            config=config,
            created_at=now,
            updated_at=now,
        )
    )


async def get_number(conn: AsyncConnection, org_id: str, number_id: str) -> RowMapping | None:
    stmt = sa.select(phone_numbers).where(phone_numbers.c.id == number_id, phone_numbers.c.organization_id == org_id)
    return (await conn.execute(stmt)).mappings().first()


async def number_taken(conn: AsyncConnection, org_id: str, number: str, except_id: str | None = None) -> bool:
    stmt = sa.select(phone_numbers.c.id).where(
        phone_numbers.c.organization_id == org_id, phone_numbers.c.number == number
    )
    if except_id:
        stmt = stmt.where(phone_numbers.c.id != except_id)
    return (await conn.scalar(stmt)) is not None


async def get_numbers(conn: AsyncConnection, org_id: str, ids: list[str]) -> dict[str, RowMapping]:
    if not ids:
        return {}
    stmt = sa.select(phone_numbers).where(phone_numbers.c.organization_id == org_id, phone_numbers.c.id.in_(ids))
    return {r["id"]: r for r in (await conn.execute(stmt)).mappings()}


async def list_numbers(
    conn: AsyncConnection, org_id: str, filters: Mapping[str, Any], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """`filters`: column -> value (number)."""
    stmt = equal_to(sa.select(phone_numbers).where(phone_numbers.c.organization_id == org_id), phone_numbers, filters)
    return await page(conn, stmt, phone_numbers.c.id, limit, cursor)


async def update_number(conn: AsyncConnection, number_id: str, config: dict[str, Any], now: datetime) -> None:
    await conn.execute(
        phone_numbers.update()
        .where(phone_numbers.c.id == number_id)
        .values(
            number=config["number"], provider=config["provider"], active=config["active"], config=config, updated_at=now
        )
    )


async def delete_number(conn: AsyncConnection, number_id: str) -> None:
    await conn.execute(phone_numbers.delete().where(phone_numbers.c.id == number_id))


async def providers_in_use(conn: AsyncConnection) -> set[str]:
    """Carriers the phone numbers of every organization use."""
    return set((await conn.scalars(sa.select(phone_numbers.c.provider).distinct())).all())


async def number_by_id(conn: AsyncConnection, number_id: str) -> RowMapping | None:
    """A phone number by its id alone (a carrier's messaging webhook names only the number)."""
    return (await conn.execute(sa.select(phone_numbers).where(phone_numbers.c.id == number_id))).mappings().first()


async def number_of_call(conn: AsyncConnection, call_id: str) -> RowMapping | None:
    """The phone number that placed a call (a carrier callback names only the call)."""
    stmt = (
        sa.select(phone_numbers)
        .join(
            calls,
            sa.and_(
                calls.c.caller_id == phone_numbers.c.id, calls.c.organization_id == phone_numbers.c.organization_id
            ),
        )
        .where(calls.c.id == call_id)
    )
    return (await conn.execute(stmt)).mappings().first()


async def numbers_named(conn: AsyncConnection, org_id: str, numbers: list[str]) -> dict[str, RowMapping]:
    """The organization's phone numbers among `numbers` (E.164), by number."""
    stmt = sa.select(phone_numbers).where(
        phone_numbers.c.organization_id == org_id, phone_numbers.c.number.in_(numbers)
    )
    return {row["number"]: row for row in (await conn.execute(stmt)).mappings()}
