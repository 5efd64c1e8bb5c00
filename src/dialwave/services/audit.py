"""A campaign's audit trail as CSV: one row per attempt (with the decision that allowed it) and one per
lead skipped (with its reason), streamed page by page: each page is read in its own short read
transaction, so an export of a million rows holds neither the rows nor a connection for its length."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from dialwave.errors import NotFound
from dialwave.store.db import Database
from dialwave.store.repositories import audit as audit_repo
from dialwave.store.repositories import campaigns as campaign_repo

PAGE = 5000
COLUMNS = (
    "kind",  # attempt | skipped
    "lead_id",
    "call_id",
    "attempt",
    "phone_number",
    "from_number",
    "at",  # attempt: when it started (or was claimed, if it never did); skipped: when it was skipped.
    # Times are ISO 8601 UTC with milliseconds: 2026-03-02T17:00:00.000Z
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


async def export(db: Database, campaign_id: str, page_size: int = PAGE) -> AsyncIterator[str]:
    """The CSV text, a header then one chunk per page: attempts in call id order, then skipped leads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield out.getvalue()
    after: str | None = None
    while True:
        async with db.read() as conn:
            rows = await audit_repo.attempt_rows(conn, campaign_id, after, page_size)
        if not rows:
            break
        out.seek(0)
        out.truncate()
        writer.writerows(rows)
        yield out.getvalue()
        after = rows[-1][2]
    after = None
    while True:
        async with db.read() as conn:
            rows = await audit_repo.skipped_rows(conn, campaign_id, after, page_size)
        if not rows:
            break
        out.seek(0)
        out.truncate()
        writer.writerows(rows)
        yield out.getvalue()
        after = rows[-1][1]
