"""The engine's events (call.started / answered / ended, lead.completed / failed, lead.dnc_added,
campaign.status_changed / completed): buffered with the writes they describe, so the group commit that
records a change also records its event. Only organizations with an enabled webhook endpoint get events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.engine.state import Live
from dialwave.store.repositories import dispatch as repo
from dialwave.store.repositories.campaigns import counts_of
from dialwave.store.repositories.webhooks import insert_events
from dialwave.webhooks.events import campaign_status_rows, dnc_added_data, event_row, iso

if TYPE_CHECKING:
    from dialwave.engine.dispatcher import Engine


def _metadata(engine: Engine, campaign_id: str) -> Mapping[str, Any]:
    camp = engine.campaigns.get(campaign_id)
    return camp.config.webhook.metadata if camp is not None else {}


def emit(
    engine: Engine, org_id: str, campaign_id: str | None, event_type: str, data: dict[str, Any], at: datetime
) -> None:
    if org_id not in engine.listening:
        return
    metadata = _metadata(engine, campaign_id) if campaign_id else {}
    engine.writes.events.append(event_row(org_id, event_type, data, at, campaign_id=campaign_id, metadata=metadata))


def _call(live: Live) -> dict[str, Any]:
    return {
        "call_id": live.call_id,
        "campaign_id": live.campaign_id,
        "lead_id": live.lead_id,
        "attempt": live.attempt,
        "to_number": live.to_number,
        "from_number": live.from_number,
        "started_at": iso(live.started_at),
    }


def call_started(engine: Engine, live: Live) -> None:
    emit(engine, live.org_id, live.campaign_id, "call.started", _call(live), live.started_at)


def call_answered(engine: Engine, live: Live, at: datetime) -> None:
    data = {**_call(live), "answered_at": iso(at)}
    emit(engine, live.org_id, live.campaign_id, "call.answered", data, at)


def call_ended(
    engine: Engine,
    live: Live,
    at: datetime,
    *,
    outcome: str,
    reason: str,
    sip_code: int | None,
    conversion: bool | None,
    duration: float,
    lead_status: str,
    next_attempt_at: datetime | None,
    why: str | None,
) -> None:
    data = {
        **_call(live),
        "answered_at": iso(live.answered_at),
        "ended_at": iso(at),
        "outcome": outcome,
        "reason": reason,
        "sip_code": sip_code,
        "conversion": conversion,
        "duration_seconds": duration,
        "lead_status": lead_status,
        "next_attempt_at": iso(next_attempt_at),
        "decision": why,
    }
    emit(engine, live.org_id, live.campaign_id, "call.ended", data, at)
    if lead_status in ("completed", "failed"):
        lead = {
            "lead_id": live.lead_id,
            "campaign_id": live.campaign_id,
            "phone_number": live.to_number,
            "status": lead_status,
            "attempts": live.attempt,
            "last_outcome": reason,
            "last_call_id": live.call_id,
            "reason": why,
            "finished_at": iso(at),
        }
        emit(engine, live.org_id, live.campaign_id, f"lead.{lead_status}", lead, at)


def dnc_added(
    engine: Engine,
    org_id: str,
    number: str,
    reason: str,
    deltas: Mapping[str, Mapping[str, int]],
    campaign_id: str | None,
    at: datetime,
    source: str,
) -> None:
    emit(engine, org_id, campaign_id, "lead.dnc_added", dnc_added_data(number, source, reason, campaign_id, deltas), at)


async def campaign_moved(
    engine: Engine, conn: AsyncConnection, campaign_id: str, old: str, new: str, reason: str, at: datetime
) -> None:
    """campaign.status_changed (and campaign.completed), in the transaction of the status change."""
    row = await repo.campaign_row(conn, campaign_id)
    if row is None or row["organization_id"] not in engine.listening:
        return
    metadata = (row["config"].get("webhook") or {}).get("metadata") or {}
    rows = campaign_status_rows(row["organization_id"], campaign_id, old, new, reason, at, metadata, counts_of(row))
    await insert_events(conn, rows)
