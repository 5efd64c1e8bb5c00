"""Campaigns: create, merge-patch update under the edit matrix, status actions, delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import campaign_rules as rules
from dialwave.domain.campaign_config import CampaignConfig, check, future, past_times
from dialwave.domain.resources import AgentConfig
from dialwave.domain.templates import variables_in
from dialwave.errors import Conflict, NotFound, ValidationFailed
from dialwave.ids import new_id
from dialwave.services.validation import raise_fields, refuse_read_only, validate
from dialwave.services.webhooks import UrlGuard, sync_campaign_endpoint
from dialwave.store.db import Database
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import campaigns as repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories.campaigns import counts_of
from dialwave.webhooks.events import campaign_status_rows, emit_rows

READ_ONLY = (
    "id",
    "status",
    "status_reason",
    "counts",
    "version",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "agent_version_used",
    "organization_id",
)


STATUS_HINT = {"status": "change it with POST /v1/campaigns/{id}/start, /pause, /resume or /cancel"}


def template_requirements(config: CampaignConfig, agent: RowMapping | None) -> tuple[set[str], set[str]]:
    """(variables used by the prompt templates, variables the agent requires), for the campaign's agent row."""
    if agent is None:
        used = variables_in(config.agent_overrides.system_prompt, config.agent_overrides.opening_message)
        return used, set()
    agent_cfg = AgentConfig.model_validate(agent["config"])
    system_prompt = config.agent_overrides.system_prompt or agent_cfg.system_prompt
    opening = config.agent_overrides.opening_message or agent_cfg.opening_message
    return variables_in(system_prompt, opening), set(agent_cfg.required_variables)


async def agent_of(conn: AsyncConnection, org_id: str, config: CampaignConfig) -> RowMapping | None:
    return None if config.agent_id is None else await agent_repo.get_agent(conn, org_id, config.agent_id)


# A change to one of these fields checks the campaign's references again (agent, version, numbers, and
# the sources of its template variables); other changes are checked by the pure rules only.
REFERENCE_FIELDS = frozenset({"agent_id", "agent_version", "caller_ids", "agent_overrides", "dynamic_variables"})


async def _check_references(
    conn: AsyncConnection,
    org_id: str,
    config: CampaignConfig,
    common_keys: list[str] | None,
    campaign_id: str | None = None,
) -> None:
    errors = dict(check(config))
    agent = await agent_of(conn, org_id, config)
    if config.agent_id is not None and agent is None:
        errors["agent_id"] = f"no agent '{config.agent_id}' in this organization"
    if config.agent_version is not None:
        if not config.agent_id:
            errors["agent_version"] = "needs agent_id"
        elif "agent_id" not in errors and not await agent_repo.agent_version_exists(
            conn, config.agent_id, config.agent_version
        ):
            errors["agent_version"] = f"agent '{config.agent_id}' has no version {config.agent_version}"
    numbers = await number_repo.get_numbers(conn, org_id, [c.phone_number_id for c in config.caller_ids])
    for i, caller in enumerate(config.caller_ids):
        if caller.phone_number_id not in numbers:
            errors[f"caller_ids[{i}].phone_number_id"] = (
                f"no phone number '{caller.phone_number_id}' in this organization"
            )
    if "agent_id" not in errors:
        used, required = template_requirements(config, agent)
        supplied = required | set(config.dynamic_variables) | set(common_keys or [])
        if campaign_id is not None and used - supplied:
            supplied |= await _supplied_by_leads(conn, campaign_id, used - supplied)
        by_field: dict[str, list[str]] = {}
        for name in sorted(used - supplied):
            where = "agent_id"
            for path in ("agent_overrides.opening_message", "agent_overrides.system_prompt"):
                if name in variables_in(getattr(config.agent_overrides, path.split(".")[1])):
                    where = path
                    break
            by_field.setdefault(where, []).append(name)
        for where, names in by_field.items():
            listed = ", ".join(f"'{{{{{n}}}}}'" for n in names)
            columns = ", ".join(f"'{n}'" for n in names)
            errors.setdefault(
                where,
                f"template variable{'s' if len(names) > 1 else ''} {listed} "
                f"{'have' if len(names) > 1 else 'has'} no source: add to dynamic_variables, to the agent's "
                f"required_variables, or give every lead a column {columns}",
            )
    raise_fields(errors)


async def _supplied_by_leads(conn: AsyncConnection, campaign_id: str, names: set[str]) -> set[str]:
    """Of `names`, those every lead still to be dialed has now (the campaign's remembered common keys
    only narrow as leads come in: a lead deleted since, or dialed to its end, may have lacked one).
    The campaign remembers the ones found."""
    lacking = await lead_repo.variables_lacking(conn, campaign_id, sorted(names))
    if lacking is None:
        return set()
    found = names - lacking
    if found:
        row = await repo.campaign_row(conn, campaign_id)
        known = set(row["lead_common_keys"] or []) if row is not None else set()
        await repo.set_common_keys(conn, campaign_id, sorted(known | found))
    return found


async def _check_urls(guard: UrlGuard, config: CampaignConfig, old: dict[str, Any] | None) -> None:
    """The SSRF guard on the URLs we will call (only those that changed)."""
    urls = {"webhook.url": config.webhook.url}
    if config.pre_dial_hook is not None and config.pre_dial_hook.url:
        urls["pre_dial_hook.url"] = config.pre_dial_hook.url
    for path, url in urls.items():
        head, key = path.split(".")
        before = ((old or {}).get(head) or {}).get(key)
        if url and url != before:
            await guard.check(url, path)


async def create_campaign(
    db: Database, org_id: str, body: CampaignConfig, now: datetime, guard: UrlGuard
) -> tuple[RowMapping, str | None]:
    """The new campaign, and the signing secret of its webhook endpoint when it has a webhook.url."""
    campaign_id = new_id("cmp")
    config = body.model_dump(mode="json")
    raise_fields(past_times(body.schedule, {"schedule.start_at", "schedule.end_at"}, rules.DRAFT, now))
    await _check_urls(guard, body, None)
    async with db.write() as conn:
        await _check_references(conn, org_id, body, None)
        if await repo.name_taken(conn, org_id, body.name):
            raise ValidationFailed(
                f"name: a campaign named '{body.name}' already exists", fields={"name": "must be unique"}
            )
        await repo.insert_campaign(
            conn,
            {
                "id": campaign_id,
                "organization_id": org_id,
                "name": body.name,
                "status": rules.DRAFT,
                "agent_id": body.agent_id,
                "config": config,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
        )
        _, secret = await sync_campaign_endpoint(conn, org_id, campaign_id, body.webhook.url, now)
        row = await repo.get_campaign(conn, org_id, campaign_id)
    assert row is not None
    return row, secret


async def list_campaigns(
    db: Database, org_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    async with db.read() as conn:
        return await repo.list_campaigns(conn, org_id, status, limit, cursor)


async def get_campaign(db: Database, org_id: str, campaign_id: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.get_campaign(conn, org_id, campaign_id)
    if row is None:
        raise NotFound(f"no campaign '{campaign_id}'")
    return row


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() in ("", "*"):
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or len(text) > 12:
        raise ValidationFailed(
            'If-Match: must be the campaign\'s version (e.g. 3 or "3")', fields={"If-Match": "not a version"}
        )
    return int(text)


def patched(row: RowMapping, patch: dict[str, Any], now: datetime) -> tuple[CampaignConfig, set[str]]:
    """The campaign's configuration with a merge-patch applied, and the paths it changes: valid, and an
    edit its status allows (409 otherwise). Nothing is written (a forecast's "what if" uses it too)."""
    refuse_read_only(patch, READ_ONLY, STATUS_HINT)
    config = validate(CampaignConfig, rules.merge_patch(row["config"], patch))
    paths = rules.changed_paths(row["config"], config.model_dump(mode="json"))
    refusal = rules.check_edit(row["status"], paths)
    if refusal:
        raise Conflict(refusal.message, code=refusal.code, fields=refusal.fields)
    if paths:
        raise_fields(past_times(config.schedule, paths, row["status"], now))
    return config, paths


async def update_campaign(
    db: Database, org_id: str, campaign_id: str, patch: Any, if_match: str | None, now: datetime, guard: UrlGuard
) -> tuple[RowMapping, str | None]:
    """The updated campaign, and the secret of its webhook endpoint when this change created it."""
    if not isinstance(patch, dict):
        raise ValidationFailed("body: must be a JSON object (merge patch)", fields={"body": "must be a JSON object"})
    expected = parse_if_match(if_match)
    async with db.write() as conn:
        row = await repo.get_campaign(conn, org_id, campaign_id, for_update=True)
        if row is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        if expected is not None and expected != row["version"]:
            raise Conflict(
                f"the campaign changed since you read it (your version {expected}, now {row['version']}): "
                "GET it again and re-apply your change",
                code="VERSION_MISMATCH",
            )
        config, paths = patched(row, patch, now)
        if not paths:
            return row, None
        new = config.model_dump(mode="json")
        await _check_urls(guard, config, row["config"])
        if paths & REFERENCE_FIELDS:  # the agent, numbers and template sources are read again
            await _check_references(conn, org_id, config, row["lead_common_keys"], campaign_id)
        else:
            raise_fields(check(config))
        if "name" in paths and await repo.name_taken(conn, org_id, config.name, campaign_id):
            raise ValidationFailed(
                f"name: a campaign named '{config.name}' already exists", fields={"name": "must be unique"}
            )
        values: dict[str, Any] = {"config": new, "name": config.name, "agent_id": config.agent_id, "updated_at": now}
        if row["status"] not in rules.FINAL and rules.opens_earlier(row["config"], new):
            values["replan_from"] = now  # the engine brings waiting leads forward (engine/replan.py)
        if row["agent_version_used"] is not None and paths & {"agent_id", "agent_version"}:
            agent = await agent_of(conn, org_id, config)  # started before: the new agent or pin applies now
            values["agent_version_used"] = config.agent_version or (agent["version"] if agent else None)
        if not await repo.update_campaign(conn, campaign_id, row["version"], values):
            raise Conflict("the campaign changed while updating: retry", code="VERSION_MISMATCH")
        secret = None
        if "webhook" in paths:
            _, secret = await sync_campaign_endpoint(conn, org_id, campaign_id, config.webhook.url, now)
        updated = await repo.get_campaign(conn, org_id, campaign_id)
    assert updated is not None
    return updated, secret


async def _start_blockers(
    conn: AsyncConnection,
    org_id: str,
    row: RowMapping,
    config: CampaignConfig,
    agent: RowMapping | None,
    resuming: bool = False,
) -> list[str]:
    problems: list[str] = []
    if not config.agent_id:
        problems.append("it has no agent (set agent_id)")
    elif agent is None or agent["status"] == "disabled":
        problems.append(f"its agent '{config.agent_id}' is disabled")
    if not config.caller_ids:
        problems.append("it has no caller id (add a phone number to caller_ids)")
    else:
        numbers = await number_repo.get_numbers(conn, org_id, [c.phone_number_id for c in config.caller_ids])
        if not any(n["active"] for n in numbers.values()):
            problems.append("none of its caller ids is active")
    if repo.leads_left(row) == 0 and not (resuming and row["count_total"]):  # resumed, every lead done: it completes
        problems.append("it has no leads to dial (POST /v1/campaigns/{id}/leads or /leads/import)")
    elif config.agent_id:
        used, required = template_requirements(config, agent)
        unsupplied = (used | required) - set(config.dynamic_variables) - set(row["lead_common_keys"] or [])
        lacking = sorted(unsupplied - await _supplied_by_leads(conn, row["id"], unsupplied))
        if lacking:
            problems.append(
                f"some leads lack {', '.join(repr(v) for v in lacking)} and dynamic_variables has no default for it"
            )
    return problems


async def act(db: Database, org_id: str, campaign_id: str, action: str, now: datetime) -> RowMapping:
    """start / pause / resume / cancel."""
    async with db.write() as conn:
        row = await repo.get_campaign(conn, org_id, campaign_id, for_update=True)
        if row is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        config = CampaignConfig.model_validate(row["config"])
        step = rules.transition(row["status"], action, start_in_future=future(config.schedule.start_at, now))
        if step.target is None:
            raise Conflict(step.refusal or "illegal transition", code="INVALID_TRANSITION")
        values: dict[str, Any] = {"status": step.target, "updated_at": now, "status_reason": None}
        if action in ("start", "resume"):
            agent = await agent_of(conn, org_id, config)
            problems = await _start_blockers(conn, org_id, row, config, agent, resuming=action == "resume")
            if problems:
                raise Conflict(f"cannot {action}: " + "; ".join(problems), code="CAMPAIGN_NOT_READY")
            if config.schedule.end_at and config.schedule.end_at <= now:
                raise Conflict(
                    f"cannot {action}: schedule.end_at is in the past; move it or clear it", code="CAMPAIGN_NOT_READY"
                )
            if action == "start":
                assert agent is not None  # _start_blockers refuses a campaign without one
                values["agent_version_used"] = config.agent_version or agent["version"]
                values["started_at"] = now
        if step.target == rules.CANCELLED:
            await lead_repo.cancel_open_leads(conn, campaign_id, "the campaign was cancelled", now)
            values["completed_at"] = now
        if not await repo.update_campaign(conn, campaign_id, row["version"], values):
            raise Conflict("the campaign changed while updating: retry", code="VERSION_MISMATCH")
        updated = await repo.get_campaign(conn, org_id, campaign_id)
        assert updated is not None
        rows = campaign_status_rows(
            org_id,
            campaign_id,
            row["status"],
            step.target,
            f"{action} requested through the API",
            now,
            config.webhook.metadata,
            counts_of(updated),
        )
        await emit_rows(conn, org_id, rows)
    return updated


async def delete_campaign(db: Database, org_id: str, campaign_id: str) -> None:
    async with db.write() as conn:
        row = await repo.get_campaign(conn, org_id, campaign_id, for_update=True)
        if row is None:
            raise NotFound(f"no campaign '{campaign_id}'")
        if row["status"] == rules.ACTIVE:
            raise Conflict("the campaign is active: pause or cancel it first, then delete", code="CAMPAIGN_ACTIVE")
        if row["count_in_progress"]:
            raise Conflict("calls are still in progress: wait for them to end", code="CALLS_IN_PROGRESS")
        await repo.delete_campaign(conn, campaign_id)
