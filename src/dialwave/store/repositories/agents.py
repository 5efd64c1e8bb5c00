"""Agents, with their immutable version snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.campaign_rules import FINAL
from dialwave.store.repositories.paging import page
from dialwave.store.tables import (
    agent_versions,
    agents,
    campaigns,
)


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


async def agent_snapshot(conn: AsyncConnection, agent_id: str, version: int) -> dict[str, Any] | None:
    stmt = sa.select(agent_versions.c.snapshot).where(
        agent_versions.c.agent_id == agent_id, agent_versions.c.version == version
    )
    snapshot: dict[str, Any] | None = await conn.scalar(stmt)
    return snapshot


async def campaigns_using(conn: AsyncConnection, org_id: str, *, agent_id: str | None = None) -> list[str]:
    stmt = sa.select(campaigns.c.id).where(campaigns.c.organization_id == org_id, campaigns.c.status.not_in(FINAL))
    if agent_id:
        stmt = stmt.where(campaigns.c.agent_id == agent_id)
    return [str(r) for r in (await conn.scalars(stmt)).all()]


async def count_campaigns_of_agent(conn: AsyncConnection, agent_id: str) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).where(campaigns.c.agent_id == agent_id)) or 0)


async def delete_agent(conn: AsyncConnection, agent_id: str) -> None:
    await conn.execute(agents.delete().where(agents.c.id == agent_id))


async def agent_named(conn: AsyncConnection, org_id: str, name: str) -> RowMapping | None:
    stmt = sa.select(agents).where(agents.c.organization_id == org_id, agents.c.name == name).order_by(agents.c.id)
    return (await conn.execute(stmt.limit(1))).mappings().first()
