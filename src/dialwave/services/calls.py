"""The agent side of a call: the context a voice runtime fetches when the call is answered, and the
per-call tokens that authorise it (the carrier hands the token to the runtime)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialwave.domain import call_tokens
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.handoff import handoff
from dialwave.errors import NotFound, Unauthorized
from dialwave.store.db import Database
from dialwave.store.repositories import dispatch as dispatch_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.store.repositories.orgs import call_token_key


async def call_of_token(db: Database, token: str, call_id: str, now: datetime) -> str:
    """The organization of `call_id` when `token` is that call's live token (401 otherwise)."""
    async with db.write() as conn:
        key = await call_token_key(conn, now)
        why = call_tokens.check(key, token, call_id, now)
        if why is not None:
            raise Unauthorized(why, code="BAD_CALL_TOKEN")
        call = await lead_repo.call_by_id(conn, call_id)
    if call is None:
        raise NotFound(f"no call '{call_id}'")
    return str(call["organization_id"])


async def context(db: Database, org_id: str, call_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        call = await lead_repo.get_call(conn, org_id, call_id)
        if call is None:
            raise NotFound(f"no call '{call_id}'")
        campaign = await dispatch_repo.campaign_row(conn, call["campaign_id"])
        lead = await lead_repo.get_lead(conn, org_id, call["campaign_id"], call["lead_id"])
        assert campaign is not None and lead is not None  # a call is deleted with its lead and campaign
        config = CampaignConfig.model_validate(campaign["config"])
        version = call["agent_version"] or campaign["agent_version_used"]
        agent: dict[str, Any] = {}
        if config.agent_id and version:
            agent = await dispatch_repo.agent_snapshot(conn, config.agent_id, version) or {}
        returning = await lead_repo.reached_before(conn, org_id, call["to_number"], call_id)
    given = handoff(agent, config, lead["variables"] or {}, lead["agent_overrides"])
    over = config.agent_overrides
    lead_over = lead["agent_overrides"] or {}

    def pick(name: str, default: Any = None) -> Any:
        value = lead_over.get(name) or getattr(over, name) or agent.get(name) or default
        return value.model_dump(mode="json") if hasattr(value, "model_dump") else value

    return {
        "call_id": call_id,
        "campaign_id": call["campaign_id"],
        "lead_id": call["lead_id"],
        "attempt": call["attempt"],
        "to_number": call["to_number"],
        "from_number": call["from_number"],
        "agent": {"id": config.agent_id, "version": version, "name": agent.get("name")},
        "system_prompt": given.system_prompt,
        "opening_message": given.opening_message,
        "variables": given.variables,
        "returning": returning,
        "short_term_summaries": [],  # filled once call results carry summaries (the result API)
        "language": pick("language", "en-US"),
        "voice": pick("voice"),
        "speech_settings": pick("speech_settings"),
        "max_call_duration_seconds": pick("max_call_duration_seconds", 600),
        "campaign_context": over.campaign_context,
    }
