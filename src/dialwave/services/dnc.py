"""The organization's do-not-call list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.errors import NotFound
from dialwave.services.validation import phone_field, phone_fields
from dialwave.store.db import Database
from dialwave.store.repositories import consents as consent_repo
from dialwave.store.repositories import dnc as repo
from dialwave.store.repositories.campaigns import add_counts
from dialwave.webhooks.events import dnc_added_data, emit, emit_rows, event_row


async def add(db: Database, org_id: str, numbers: list[str], reason: str | None, now: datetime) -> tuple[int, int]:
    """Returns (added, already listed)."""
    normalized = list(dict.fromkeys(phone_fields(numbers)))
    async with db.write() as conn:
        added = await repo.dnc_added(conn, org_id, normalized, reason, "api", now)
        await consent_repo.revoke_numbers(conn, org_id, normalized, "dnc", now)
        data = [{"phone_number": n, "source": "api", "reason": reason, "campaign_id": None} for n in added]
        await emit_rows(conn, org_id, [event_row(org_id, "lead.dnc_added", d, now) for d in data])
    return len(added), len(numbers) - len(added)


async def opt_out(
    conn: AsyncConnection, org_id: str, number: str, reason: str, channel: str, campaign_id: str | None, now: datetime
) -> bool:
    """A person opted out through `channel` (`opt_out`: a call's result; `sms`: a STOP reply): the number
    goes on the organization's list, its waiting leads are skipped in every campaign, its consents are
    revoked with that channel, and lead.dnc_added is emitted. Whether it was not listed before."""
    added, deltas = await repo.put_on_dnc(conn, org_id, number, reason, channel, now)
    for cid, delta in deltas.items():
        await add_counts(conn, cid, **delta)
    if added:
        data = dnc_added_data(number, channel, reason, campaign_id, deltas)
        await emit(conn, org_id, "lead.dnc_added", data, now, campaign_id=campaign_id)
    return added


async def remove(db: Database, org_id: str, raw: str) -> None:
    number = phone_field(raw, "phone_number")
    async with db.write() as conn:
        if not await repo.dnc_remove(conn, org_id, number):
            raise NotFound(f"{number} is not on the do-not-call list")


async def list_numbers(
    db: Database, org_id: str, raw: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """The list, or whether one number (`raw`, normalised) is on it."""
    number = phone_field(raw, "phone_number") if raw else None
    async with db.read() as conn:
        return await repo.dnc_list(conn, org_id, number, limit, cursor)
