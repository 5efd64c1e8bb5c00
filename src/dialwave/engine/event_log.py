"""The engine's events (call.started / answered / ended, lead.completed / failed, lead.dnc_added,
campaign.status_changed / completed): buffered with the writes they describe, so the group commit that
records a change also records its event. Only organizations with an enabled webhook endpoint get
events: the log knows which (`listening`, refreshed with the campaigns)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.engine.state import CampaignState, Live
from dialwave.engine.write_buffer import WriteBuffer
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories.webhooks import insert_events
from dialwave.webhooks.events import campaign_status_rows, dnc_added_data, event_row, iso


class EventLog:
    def __init__(self, buffer: WriteBuffer, campaigns: Mapping[str, CampaignState]) -> None:
        self.buffer = buffer
        self.campaigns = campaigns  # for each campaign's webhook.metadata, echoed in its events
        self.listening: set[str] = set()  # organizations with an enabled webhook endpoint

    def emit(self, org_id: str, campaign_id: str | None, event_type: str, data: dict[str, Any], at: datetime) -> None:
        if org_id not in self.listening:
            return
        camp = self.campaigns.get(campaign_id) if campaign_id else None
        metadata = camp.config.webhook.metadata if camp is not None else {}
        self.buffer.events.append(event_row(org_id, event_type, data, at, campaign_id=campaign_id, metadata=metadata))

    def call_started(self, live: Live) -> None:
        if live.org_id not in self.listening:  # nobody listens: not even the event's data is built
            return
        self.emit(live.org_id, live.campaign_id, "call.started", _call(live), live.started_at)

    def call_answered(self, live: Live, at: datetime) -> None:
        if live.org_id not in self.listening:
            return
        self.emit(live.org_id, live.campaign_id, "call.answered", {**_call(live), "answered_at": iso(at)}, at)

    def call_ended(
        self,
        live: Live,
        at: datetime,
        *,
        outcome: str,
        reason: str,
        sip_code: int | None,
        conversion: bool | None,
        duration: float,
        voicemail_left: bool | None,
        lead_status: str,
        next_attempt_at: datetime | None,
        why: str | None,
    ) -> None:
        if live.org_id not in self.listening:
            return
        data = {
            **_call(live),
            "answered_at": iso(live.answered_at),
            "ended_at": iso(at),
            "outcome": outcome,
            "reason": reason,
            "sip_code": sip_code,
            "conversion": conversion,
            "duration_seconds": duration,
            "voicemail_left": voicemail_left,
            "lead_status": lead_status,
            "next_attempt_at": iso(next_attempt_at),
            "decision": why,
        }
        self.emit(live.org_id, live.campaign_id, "call.ended", data, at)
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
            self.emit(live.org_id, live.campaign_id, f"lead.{lead_status}", lead, at)

    def dnc_added(
        self,
        org_id: str,
        number: str,
        reason: str,
        deltas: Mapping[str, Mapping[str, int]],
        campaign_id: str | None,
        at: datetime,
        source: str,
    ) -> None:
        if org_id not in self.listening:
            return
        data = dnc_added_data(number, source, reason, campaign_id, deltas)
        self.emit(org_id, campaign_id, "lead.dnc_added", data, at)

    async def campaign_moved(
        self, conn: AsyncConnection, campaign_id: str, old: str, new: str, reason: str, at: datetime
    ) -> None:
        """campaign.status_changed (and campaign.completed), in the transaction of the status change."""
        row = await campaign_repo.campaign_row(conn, campaign_id)
        if row is None or row["organization_id"] not in self.listening:
            return
        metadata = (row["config"].get("webhook") or {}).get("metadata") or {}
        counts = campaign_repo.counts_of(row)
        rows = campaign_status_rows(row["organization_id"], campaign_id, old, new, reason, at, metadata, counts)
        await insert_events(conn, rows)


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
