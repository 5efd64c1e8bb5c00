"""A campaign's audit trail as CSV: one row per attempt (with the decision that allowed it) and one per
lead skipped (with its reason), streamed page by page: each page is read in its own short read
transaction, so an export of a million rows holds neither the rows nor a connection for its length."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from dialwave.errors import NotFound
from dialwave.store.db import Database
from dialwave.store.repositories import calls as call_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import leads as lead_repo
from dialwave.webhooks.events import iso

PAGE = 5000
COLUMNS = (
    "kind",  # attempt | skipped
    "lead_id",
    "call_id",
    "attempt",
    "phone_number",
    "from_number",
    "at",  # attempt: when it started (or was claimed, if it never did); skipped: when it was skipped
    "status",
    "outcome",
    "answered_at",
    "agent_connected_at",
    "ended_at",
    "abandoned",
    "checked_at",
    "zones",  # "zone=local time" per zone, separated by "; "
    "rules",
    "dnc_lists",
    "consent_required",
    "consent_id",
    "reason",
)


async def check_campaign(db: Database, org_id: str, campaign_id: str) -> None:
    """A 404 before the stream starts (another organization's campaign is not found either)."""
    async with db.read() as conn:
        if await campaign_repo.get_campaign(conn, org_id, campaign_id) is None:
            raise NotFound(f"no campaign '{campaign_id}'")


def _time(at: datetime | None) -> str:
    return iso(at) or ""


def _attempt(row: Any) -> list[Any]:
    d = row.decision or {}
    zones = "; ".join(f"{z['zone']}={z['local_time']}" for z in d.get("zones", ()))
    consent = d.get("consent") or {}
    return [
        "attempt",
        row.lead_id,
        row.id,
        row.attempt,
        row.to_number,
        row.from_number,
        _time(row.started_at or row.created_at),
        row.status,
        row.outcome or "",
        _time(row.answered_at),
        _time(row.agent_connected_at),
        _time(row.ended_at),
        "true" if row.abandoned else "false",
        d.get("checked_at", ""),
        zones,
        ";".join(d.get("rules", ())),
        ";".join(d.get("dnc_lists", ())),
        consent.get("required") or "",
        consent.get("id") or "",
        row.reason or "",
    ]


def _skipped(row: Any) -> list[Any]:
    at = _time(row.finished_at)
    return ["skipped", row.id, "", row.attempts, row.phone_number, "", at, "skipped", *[""] * 11, row.reason or ""]


def _fix(cells: list[Any]) -> list[Any]:
    """Reason and the like are free text: a cell starting with = + - @ is prefixed with ' so a
    spreadsheet does not run it as a formula."""
    last = cells[-1]
    if isinstance(last, str) and last[:1] in ("=", "+", "-", "@"):
        cells[-1] = "'" + last
    return cells


async def export(db: Database, campaign_id: str, page_size: int = PAGE) -> AsyncIterator[str]:
    """The CSV text, a header then one chunk per page: attempts in call id order, then skipped leads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield out.getvalue()
    after: str | None = None
    while True:
        async with db.read() as conn:
            rows = await call_repo.audit_calls(conn, campaign_id, after, page_size)
        if not rows:
            break
        out.seek(0)
        out.truncate()
        writer.writerows(_fix(_attempt(r)) for r in rows)
        yield out.getvalue()
        after = rows[-1].id
    after = None
    while True:
        async with db.read() as conn:
            leads = await lead_repo.skipped_leads(conn, campaign_id, after, page_size)
        if not leads:
            break
        out.seek(0)
        out.truncate()
        writer.writerows(_fix(_skipped(r)) for r in leads)
        yield out.getvalue()
        after = leads[-1].id
