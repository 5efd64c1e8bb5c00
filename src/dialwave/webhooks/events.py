"""Events into the outbox: one envelope per event, written in the caller's transaction (so an event
exists exactly when the change that caused it was committed). Only organizations with an enabled
webhook endpoint get events written; the delivery worker fans them out to the endpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.ids import new_id
from dialwave.store.repositories import webhooks as repo


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_row(
    org_id: str,
    event_type: str,
    data: Mapping[str, Any],
    now: datetime,
    *,
    campaign_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The outbox row; `payload` is the envelope exactly as it will be sent (and signed)."""
    event_id = new_id("evt")
    envelope = {
        "id": event_id,
        "type": event_type,
        "created_at": iso(now),
        "organization_id": org_id,
        "data": dict(data),
        "metadata": dict(metadata or {}),
    }
    return {
        "id": event_id,
        "organization_id": org_id,
        "campaign_id": campaign_id,
        "type": event_type,
        "payload": json.dumps(envelope, separators=(",", ":"), default=str),
        "created_at": now,
        "fanned_out": False,
    }


async def emit(
    conn: AsyncConnection,
    org_id: str,
    event_type: str,
    data: Mapping[str, Any],
    now: datetime,
    *,
    campaign_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    await emit_rows(
        conn, org_id, [event_row(org_id, event_type, data, now, campaign_id=campaign_id, metadata=metadata)]
    )


async def emit_rows(conn: AsyncConnection, org_id: str, rows: list[dict[str, Any]]) -> None:
    if rows and org_id in await repo.orgs_listening(conn, [org_id]):
        await repo.insert_events(conn, rows)


def campaign_status_rows(
    org_id: str,
    campaign_id: str,
    old: str,
    new: str,
    reason: str | None,
    now: datetime,
    metadata: Mapping[str, Any] | None,
    counts: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """campaign.status_changed, and campaign.completed when it completed."""
    data = {"campaign_id": campaign_id, "from": old, "to": new, "reason": reason}
    rows = [event_row(org_id, "campaign.status_changed", data, now, campaign_id=campaign_id, metadata=metadata)]
    if new == "completed":
        done = {"campaign_id": campaign_id, "reason": reason, "completed_at": iso(now), "counts": dict(counts or {})}
        rows.append(event_row(org_id, "campaign.completed", done, now, campaign_id=campaign_id, metadata=metadata))
    return rows


def dnc_added_data(
    number: str, source: str, reason: str, campaign_id: str | None, deltas: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    """lead.dnc_added for a number listed by an outcome or an opt-out; `deltas` as put_on_dnc returns them."""
    skipped = sum(d.get("skipped", 0) for d in deltas.values())
    return {
        "phone_number": number,
        "source": source,
        "reason": reason,
        "campaign_id": campaign_id,
        "leads_skipped": skipped,
    }


def call_result_data(row: RowMapping) -> dict[str, Any]:
    """An agent runtime's stored result, as the API shows it and `call.result` sends it."""
    keys = ("call_id", "conversion", "disposition", "summary", "transcript", "transcript_url", "opted_out", "data")
    out = {k: row[k] for k in keys}
    out["callback_at"] = iso(row["callback_at"])
    out["created_at"], out["updated_at"] = iso(row["created_at"]), iso(row["updated_at"])
    return out
