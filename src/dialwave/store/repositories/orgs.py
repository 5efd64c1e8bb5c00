"""Organizations: their concurrency cap and Twilio credentials."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.ids import new_id
from dialwave.store.tables import (
    organizations,
)


async def get_or_create_org(conn: AsyncConnection, name: str, now: datetime) -> str:
    found = await conn.scalar(sa.select(organizations.c.id).where(organizations.c.name == name))
    if found:
        return str(found)
    org_id = new_id("org")
    await conn.execute(organizations.insert().values(id=org_id, name=name, created_at=now))
    return org_id


async def set_max_concurrency(conn: AsyncConnection, org_name: str, value: int | None) -> bool:
    result = await conn.execute(
        organizations.update().where(organizations.c.name == org_name).values(max_concurrency=value)
    )
    return bool(result.rowcount)


async def org_caps(conn: AsyncConnection, org_ids: Iterable[str]) -> dict[str, int | None]:
    ids = list(set(org_ids))
    if not ids:
        return {}
    stmt = sa.select(organizations.c.id, organizations.c.max_concurrency).where(organizations.c.id.in_(ids))
    return {row.id: row.max_concurrency for row in await conn.execute(stmt)}


async def set_twilio(conn: AsyncConnection, org_name: str, twilio: dict[str, str] | None) -> bool:
    """Organization-wide Twilio credentials (used by its Twilio numbers that carry none of their own)."""
    return await _set_setting(conn, org_name, "twilio", twilio)


async def _set_setting(conn: AsyncConnection, org_name: str, name: str, value: object) -> bool:
    """One entry of the organization's settings (None removes it). False: no such organization."""
    row = (await conn.execute(sa.select(organizations.c.settings).where(organizations.c.name == org_name))).first()
    if row is None:
        return False
    settings = dict(row[0] or {})
    if value is None:
        settings.pop(name, None)
    else:
        settings[name] = value
    await conn.execute(organizations.update().where(organizations.c.name == org_name).values(settings=settings))
    return True


async def org_twilio(conn: AsyncConnection, org_ids: list[str]) -> dict[str, dict[str, str]]:
    """{organization id: its Twilio credentials}, for those that have them."""
    if not org_ids:
        return {}
    stmt = sa.select(organizations.c.id, organizations.c.settings).where(organizations.c.id.in_(org_ids))
    return {r.id: r.settings["twilio"] for r in (await conn.execute(stmt)) if r.settings and r.settings.get("twilio")}


async def rate_limit(conn: AsyncConnection, org_id: str) -> float | None:
    """The organization's own requests-per-second limit per key (None: the server's default)."""
    settings = await conn.scalar(sa.select(organizations.c.settings).where(organizations.c.id == org_id))
    value = (settings or {}).get("rate_limit_per_second")
    return None if value is None else float(value)


async def set_rate_limit(conn: AsyncConnection, org_name: str, per_second: float | None) -> bool:
    return await _set_setting(conn, org_name, "rate_limit_per_second", per_second)
