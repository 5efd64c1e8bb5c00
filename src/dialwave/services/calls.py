"""The agent side of a call: the context a voice runtime fetches when the call is answered, and the
per-call tokens that authorise it (the carrier hands the token to the runtime)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import call_tokens
from dialwave.domain import lead_states as ls
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes, earliest
from dialwave.domain.handoff import handoff
from dialwave.domain.outcomes import ANSWERED, NO_CONVERSION
from dialwave.domain.retry import callback, decide
from dialwave.errors import NotFound, Unauthorized
from dialwave.services import dnc as dnc_service
from dialwave.services.validation import phone_field
from dialwave.store.db import Database
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories import results as results_repo
from dialwave.store.repositories.campaigns import add_counts
from dialwave.store.repositories.server_secrets import call_token_key
from dialwave.webhooks.events import call_result_data, emit

_token_keys: WeakKeyDictionary[Database, bytes] = WeakKeyDictionary()


async def _token_key(db: Database, now: datetime) -> bytes:
    """The call-token key, read (or created) once per database handle: it never changes once created,
    and every token-authorised request needs it."""
    key = _token_keys.get(db)
    if key is None:
        async with db.write() as conn:
            key = _token_keys[db] = await call_token_key(conn, now)
    return key


async def call_of_token(db: Database, token: str, call_id: str, now: datetime, grace: timedelta) -> str:
    """The organization of `call_id` when `token` is that call's live token (401 otherwise). Once the
    call has ended, the token serves `grace` more (a result posted after the hang-up), then no more."""
    why = call_tokens.check(await _token_key(db, now), token, call_id, now)
    if why is not None:
        raise Unauthorized(why, code="BAD_CALL_TOKEN")
    async with db.read() as conn:
        call = await call_repo.call_by_id(conn, call_id)
    if call is None:
        raise NotFound(f"no call '{call_id}'")
    ended = call["ended_at"]
    if ended is not None and now > ended + grace:
        raise Unauthorized(
            f"the call ended more than {int(grace.total_seconds())} s ago: its token no longer serves; use an API key",
            code="CALL_TOKEN_EXPIRED",
        )
    return str(call["organization_id"])


async def context(db: Database, org_id: str, call_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        call = await call_repo.get_call(conn, org_id, call_id)
        if call is None:
            raise NotFound(f"no call '{call_id}'")
        campaign = await campaign_repo.campaign_row(conn, call["campaign_id"])
        lead = await lead_repo.get_lead(conn, org_id, call["campaign_id"], call["lead_id"])
        assert campaign is not None and lead is not None  # a call is deleted with its lead and campaign
        config = CampaignConfig.model_validate(campaign["config"])
        version = call["agent_version"] or campaign["agent_version_used"]
        agent: dict[str, Any] = {}
        if config.agent_id and version:
            agent = await agent_repo.agent_snapshot(conn, config.agent_id, version) or {}
        caller = await number_repo.get_number(conn, org_id, call["caller_id"]) if call["caller_id"] else None
        over, lead_over = config.agent_overrides, lead["agent_overrides"] or {}

        def flag(name: str) -> bool:
            """A use_* switch: the lead's override, else the campaign's, else on."""
            value = lead_over.get(name)
            return bool(value if value is not None else getattr(over, name) is not False)

        returning = flag("use_returning_greeting") and await call_repo.reached_before(
            conn, org_id, call["to_number"], call_id
        )
        summaries: list[str] = []
        if flag("use_short_term_summaries"):
            limit = lead_over.get("short_term_summaries_limit") or over.short_term_summaries_limit or 3
            summaries = await results_repo.recent_summaries(conn, org_id, call["to_number"], call_id, limit)
    given = handoff(agent, config, lead["variables"] or {}, lead["agent_overrides"])

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
        "from_name": caller["config"].get("friendly_name") if caller is not None else None,
        "campaign": {
            "id": call["campaign_id"],
            "name": config.name,
            "type": config.type,
            "description": config.description,
        },
        "agent": {"id": config.agent_id, "version": version, "name": agent.get("name")},
        "system_prompt": given.system_prompt,
        "opening_message": given.opening_message,
        "variables": given.variables,
        "returning": returning,
        "short_term_summaries": summaries,
        "language": pick("language", "en-US"),
        "voice": pick("voice"),
        "speech_settings": pick("speech_settings"),
        "max_call_duration_seconds": pick("max_call_duration_seconds", 600),
        "campaign_context": over.campaign_context,
        "machine_detection": {
            "enabled": config.machine_detection.enabled,
            "timeout_seconds": config.machine_detection.timeout_seconds,
            "on_voicemail": config.machine_detection.on_voicemail,
        },
        "voicemail_message": given.voicemail_message,
    }


class Posted(NamedTuple):
    result: RowMapping  # the stored result, as it is now
    redecided: str | None  # the campaign whose lead was decided again (the call had ended)
    call_live: bool  # the call is still up: the engine applies conversion and callback at its end

    def decides_live_end(self, conversion: bool | None, callback_at: datetime | None) -> bool:
        """The call is still up and this result changes what its end decides (a conversion, a callback):
        the engine holding the call must hear of it."""
        return self.call_live and (conversion is not None or callback_at is not None)


async def post_result(db: Database, org_id: str, call_id: str, given: dict[str, Any], now: datetime) -> Posted:
    """Store the runtime's result (posting it again updates it; effects apply once). An opt-out puts the
    number on the organization's DNC list and skips its due attempts in every campaign, in this
    transaction: once this answers, nothing more is dialed to it. `given`: the fields the runtime sent
    (conversion, disposition, summary, transcript, transcript_url, opted_out, callback_at, data).
    Returns the result, and the campaign
    whose lead was decided again (a late `conversion: false`), if any."""
    async with db.write() as conn:
        call = await call_repo.get_call(conn, org_id, call_id, lock=True)
        if call is None:
            raise NotFound(f"no call '{call_id}'")
        old = await results_repo.get_result(conn, call_id)
        stored = {k: v for k, v in given.items() if k != "voicemail_left"}  # that one is the call's
        values = {**(dict(old) if old is not None else {}), **stored, "call_id": call_id, "updated_at": now}
        values.setdefault("organization_id", org_id)
        values.setdefault("to_number", call["to_number"])
        values.setdefault("opted_out", False)
        values.setdefault("created_at", now)
        values["opted_out"] = bool(values["opted_out"]) or bool(old is not None and old["opted_out"])
        await results_repo.save_result(conn, values, exists=old is not None)
        if values["opted_out"] and not (old is not None and old["opted_out"]):
            await opt_out(conn, org_id, call, now)
        if given.get("voicemail_left") is not None:  # the runtime met a machine (and left the message, or not)
            await call_repo.update_calls(conn, {call_id: {"voicemail_left": given["voicemail_left"]}})
        redecided = None
        ended = call["status"] == "ended"
        if (
            not values["opted_out"]
            and ended
            and await after_hang_up(conn, org_id, call, given.get("conversion"), given.get("callback_at"), now)
        ):
            redecided = call["campaign_id"]
        saved = await results_repo.get_result(conn, call_id)
        assert saved is not None
        await emit_result(conn, org_id, call, saved, now)
    return Posted(saved, redecided, not ended)


async def emit_result(conn: AsyncConnection, org_id: str, call: RowMapping, result: RowMapping, now: datetime) -> None:
    """`call.result`: the stored result as it is now (each post sends one), without the transcript text."""
    campaign = await campaign_repo.campaign_row(conn, call["campaign_id"])
    metadata = CampaignConfig.model_validate(campaign["config"]).webhook.metadata if campaign is not None else {}
    data = {k: v for k, v in call_result_data(result).items() if k != "transcript"}
    data.update(campaign_id=call["campaign_id"], lead_id=call["lead_id"], attempt=call["attempt"])
    data["has_transcript"] = result["transcript"] is not None
    await emit(conn, org_id, "call.result", data, now, campaign_id=call["campaign_id"], metadata=metadata)


async def opt_out(conn: AsyncConnection, org_id: str, call: RowMapping, now: datetime) -> None:
    number = call["to_number"]
    reason = f"opted out on call {call['id']}"
    await dnc_service.opt_out(conn, org_id, number, reason, "opt_out", call["campaign_id"], now)


class EndedWith(NamedTuple):
    """What the engine's end of an answered call knew of its result."""

    org_id: str
    conversion: bool | None  # the call's conversion at its end (the runtime's, else the carrier's)
    callback_at: datetime | None


async def stored_results(conn: AsyncConnection, ended: dict[str, EndedWith], now: datetime) -> set[str]:
    """The engine's commit that ends these calls applies what their stored results say and their end did
    not know: results stored while a call was up that its engine had not heard of (posted to another
    process, the notice not taken before the end). What the end decided with is not applied again.
    Returns the campaigns whose leads were decided again."""
    changed: set[str] = set()
    for row in await results_repo.deciding_results(conn, list(ended)):
        known = ended[row["call_id"]]
        conversion = False if row["conversion"] is False and known.conversion is not False else None
        callback_at = row["callback_at"] if row["callback_at"] not in (None, known.callback_at) else None
        if conversion is None and callback_at is None:
            continue
        call = await call_repo.get_call(conn, known.org_id, row["call_id"])
        if call is None:
            continue
        if await after_hang_up(conn, call["organization_id"], call, conversion, callback_at, now):
            changed.add(call["campaign_id"])
    return changed


async def after_hang_up(
    conn: AsyncConnection,
    org_id: str,
    call: RowMapping,
    conversion: bool | None,
    callback_at: datetime | None,
    now: datetime,
) -> bool:
    """A result that reaches an ended call: conversion false is recorded on the call, and the lead is
    decided again (`reopen`). True when the lead changed. Used by the result post, and by the engine
    for results stored while the call was up in another process."""
    if callback_at is None and conversion is not False:
        return False
    if conversion is False:
        await call_repo.update_calls(conn, {call["id"]: {"conversion": False}})
    return await reopen(conn, org_id, call, callback_at, now)


async def reopen(
    conn: AsyncConnection, org_id: str, call: RowMapping, callback_at: datetime | None, now: datetime
) -> bool:
    """A result after the hang-up: if the call's lead was decided by this very call in a running campaign,
    decide again: a callback (one attempt at the asked time, within max_attempts), else the
    no_conversion rule, as the engine would have at the hang-up. True when the lead changed."""
    lead = await lead_repo.get_lead(conn, org_id, call["campaign_id"], call["lead_id"])
    campaign = await campaign_repo.campaign_row(conn, call["campaign_id"])
    if lead is None or campaign is None or campaign["status"] not in ("active", "paused", "scheduled"):
        return False
    if lead["attempts"] != call["attempt"]:
        return False  # a later attempt has started: this result is history
    config = CampaignConfig.model_validate(campaign["config"])
    retries = dict(lead["retries"] or {})
    decision = None
    if callback_at is not None and lead["status"] in (ls.COMPLETED, ls.FAILED, ls.RETRY_PENDING):
        decision = callback(config.retry, call["attempt"], retries, callback_at, now)
    elif call["outcome"] == ANSWERED and lead["status"] == ls.COMPLETED:
        decision = decide(config.retry, NO_CONVERSION, call["attempt"], retries, now)
    if decision is None or decision.status != ls.RETRY_PENDING or decision.retry_at is None:
        return False
    times = CampaignTimes.of(config.schedule, None, config.compliance.unknown_location)
    due = (
        earliest(times, lead["phone_number"], lead["timezone"], decision.retry_at, lead["region"]) or decision.retry_at
    )
    change = {
        "status": ls.RETRY_PENDING,
        "retries": decision.retries,
        "next_attempt_at": due,
        "earliest_at": decision.retry_at,
        "reason": decision.why,
        "finished_at": None,
        "updated_at": now,
    }
    if callback_at is None:
        change["last_outcome"] = NO_CONVERSION
    await lead_repo.update_leads(conn, {lead["id"]: change})
    if lead["status"] != ls.RETRY_PENDING:
        await add_counts(conn, call["campaign_id"], **{lead["status"]: -1, "retry_pending": 1})
    return True


async def list_calls(
    db: Database, org_id: str, filters: dict[str, str | None], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """The organization's calls; `filters`: campaign_id, lead_id, outcome, phone_number (any spelling)."""
    given = {k: v for k, v in filters.items() if v}
    if "phone_number" in given:
        given["to_number"] = phone_field(given.pop("phone_number") or "", "phone_number")
    async with db.read() as conn:
        return await call_repo.list_calls(conn, org_id, given, limit, cursor)


async def get_call(db: Database, org_id: str, call_id: str) -> tuple[RowMapping, RowMapping | None]:
    """The call and the agent runtime's result, when one was posted."""
    async with db.read() as conn:
        row = await call_repo.get_call(conn, org_id, call_id)
        result = await results_repo.get_result(conn, call_id) if row is not None else None
    if row is None:
        raise NotFound(f"no call '{call_id}'")
    return row, result
