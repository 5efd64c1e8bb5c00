"""Agents (with immutable version snapshots) and phone numbers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.campaign_rules import FINAL
from dialwave.store.repositories.paging import page
from dialwave.store.tables import agent_versions, agents, calls, campaigns, phone_numbers


async def insert_agent(
    conn: AsyncConnection, agent_id: str, org_id: str, config: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        agents.insert().values(
            id=agent_id,
            organization_id=org_id,
            name=config["name"],
            status=config["status"],
            version=1,
            config=config,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(agent_versions.insert().values(agent_id=agent_id, version=1, snapshot=config, created_at=now))


async def get_agent(conn: AsyncConnection, org_id: str, agent_id: str) -> RowMapping | None:
    stmt = sa.select(agents).where(agents.c.id == agent_id, agents.c.organization_id == org_id)
    return (await conn.execute(stmt)).mappings().first()


async def list_agents(
    conn: AsyncConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    return await page(conn, sa.select(agents).where(agents.c.organization_id == org_id), agents.c.id, limit, cursor)


async def update_agent(
    conn: AsyncConnection, agent_id: str, version: int, config: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        agents.update()
        .where(agents.c.id == agent_id)
        .values(name=config["name"], status=config["status"], version=version, config=config, updated_at=now)
    )
    await conn.execute(
        agent_versions.insert().values(agent_id=agent_id, version=version, snapshot=config, created_at=now)
    )


async def agent_version_exists(conn: AsyncConnection, agent_id: str, version: int) -> bool:
    stmt = sa.select(sa.literal(1)).where(agent_versions.c.agent_id == agent_id, agent_versions.c.version == version)
    return (await conn.scalar(stmt)) is not None


async def list_agent_versions(conn: AsyncConnection, agent_id: str) -> Sequence[RowMapping]:
    stmt = sa.select(agent_versions).where(agent_versions.c.agent_id == agent_id).order_by(agent_versions.c.version)
    return (await conn.execute(stmt)).mappings().all()


async def campaigns_using(conn: AsyncConnection, org_id: str, *, agent_id: str | None = None) -> list[str]:
    stmt = sa.select(campaigns.c.id).where(campaigns.c.organization_id == org_id, campaigns.c.status.not_in(FINAL))
    if agent_id:
        stmt = stmt.where(campaigns.c.agent_id == agent_id)
    return [str(r) for r in (await conn.scalars(stmt)).all()]


async def count_campaigns_of_agent(conn: AsyncConnection, agent_id: str) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).where(campaigns.c.agent_id == agent_id)) or 0)


async def delete_agent(conn: AsyncConnection, agent_id: str) -> None:
    await conn.execute(agents.delete().where(agents.c.id == agent_id))


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
    conn: AsyncConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(phone_numbers).where(phone_numbers.c.organization_id == org_id)
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
