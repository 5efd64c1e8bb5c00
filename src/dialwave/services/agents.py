"""Agents: create, merge-patch update (each update a new immutable version), delete, read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from dialwave.domain.campaign_rules import merge_patch
from dialwave.domain.resources import AgentConfig, check_agent
from dialwave.errors import Conflict, NotFound
from dialwave.ids import new_id
from dialwave.services.validation import raise_fields, refuse_read_only, validate
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database
from dialwave.store.repositories import agents as repo

READ_ONLY = ("id", "version", "created_at", "updated_at", "organization_id")


async def create_agent(db: Database, org_id: str, body: AgentConfig, now: datetime, guard: UrlGuard) -> RowMapping:
    raise_fields(check_agent(body))
    if body.context_webhook_url:
        await guard.check(body.context_webhook_url, "context_webhook_url")
    agent_id = new_id("agt")
    async with db.write() as conn:
        await repo.insert_agent(conn, agent_id, org_id, body.model_dump(mode="json"), now)
        row = await repo.get_agent(conn, org_id, agent_id)
    assert row is not None
    return row


async def get_agent(db: Database, org_id: str, agent_id: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.get_agent(conn, org_id, agent_id)
    if row is None:
        raise NotFound(f"no agent '{agent_id}'")
    return row


async def list_agents(
    db: Database, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    async with db.read() as conn:
        return await repo.list_agents(conn, org_id, limit, cursor)


async def list_versions(db: Database, org_id: str, agent_id: str) -> Sequence[RowMapping]:
    """Every version of an agent, oldest first (each update keeps an immutable snapshot)."""
    async with db.read() as conn:
        if await repo.get_agent(conn, org_id, agent_id) is None:
            raise NotFound(f"no agent '{agent_id}'")
        return await repo.list_agent_versions(conn, agent_id)


async def update_agent(
    db: Database, org_id: str, agent_id: str, patch: Any, now: datetime, guard: UrlGuard
) -> RowMapping:
    refuse_read_only(patch, READ_ONLY)
    if isinstance(patch, dict) and patch.get("context_webhook_url"):
        await guard.check(str(patch["context_webhook_url"]), "context_webhook_url")
    async with db.write() as conn:
        row = await repo.get_agent(conn, org_id, agent_id)
        if row is None:
            raise NotFound(f"no agent '{agent_id}'")
        config = validate(AgentConfig, merge_patch(row["config"], patch))
        raise_fields(check_agent(config))
        new = config.model_dump(mode="json")
        if new != row["config"]:
            await repo.update_agent(conn, agent_id, row["version"] + 1, new, now)
        updated = await repo.get_agent(conn, org_id, agent_id)
    assert updated is not None
    return updated


async def delete_agent(db: Database, org_id: str, agent_id: str) -> None:
    async with db.write() as conn:
        if await repo.get_agent(conn, org_id, agent_id) is None:
            raise NotFound(f"no agent '{agent_id}'")
        if await repo.count_campaigns_of_agent(conn, agent_id):
            raise Conflict(
                "the agent is used by a campaign: point those campaigns at another agent (or delete them) first, "
                "or set the agent's status to disabled",
                code="AGENT_IN_USE",
            )
        await repo.delete_agent(conn, agent_id)
