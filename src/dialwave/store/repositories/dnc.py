"""The organization's do-not-call list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.store.repositories import consents as consent_repo
from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import IN_CHUNK, driver_rows, insert_ignore, one_of
from dialwave.store.tables import dnc_numbers, leads


async def dnc_is_empty(conn: AsyncConnection, org_id: str) -> bool:
    stmt = sa.select(dnc_numbers.c.phone_number).where(dnc_numbers.c.organization_id == org_id).limit(1)
    return (await conn.scalar(stmt)) is None


async def dnc_listed(conn: AsyncConnection, org_id: str) -> set[str]:
    """Every number on the organization's list (a forecast's store holds them: engine/storage.py)."""
    stmt = sa.select(dnc_numbers.c.phone_number).where(dnc_numbers.c.organization_id == org_id)
    return set((await conn.scalars(stmt)).all())


async def dnc_contains(conn: AsyncConnection, org_id: str, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    if conn.dialect.name == "sqlite":  # every claim asks: the driver alone
        for i in range(0, len(numbers), IN_CHUNK):
            chunk = tuple(numbers[i : i + IN_CHUNK])
            marks = ", ".join("?" for _ in chunk)
            sql = f"SELECT phone_number FROM dnc_numbers WHERE organization_id = ? AND phone_number IN ({marks})"
            found.update(row[0] for row in await driver_rows(conn, sql, (org_id, *chunk)))
        return found
    for condition in one_of(conn, dnc_numbers.c.phone_number, numbers):
        stmt = sa.select(dnc_numbers.c.phone_number).where(dnc_numbers.c.organization_id == org_id, condition)
        found.update((await conn.scalars(stmt)).all())
    return found


async def dnc_add(
    conn: AsyncConnection, org_id: str, numbers: Iterable[str], reason: str | None, source: str, now: datetime
) -> int:
    return len(await dnc_added(conn, org_id, numbers, reason, source, now))


async def dnc_added(
    conn: AsyncConnection, org_id: str, numbers: Iterable[str], reason: str | None, source: str, now: datetime
) -> list[str]:
    """Like dnc_add, returning the numbers that were not listed before."""
    rows = [
        {"organization_id": org_id, "phone_number": n, "reason": reason, "source": source, "created_at": now}
        for n in numbers
    ]
    return [str(n) for n in await insert_ignore(conn, dnc_numbers, rows, dnc_numbers.c.phone_number)]


async def dnc_remove(conn: AsyncConnection, org_id: str, number: str) -> bool:
    result = await conn.execute(
        dnc_numbers.delete().where(dnc_numbers.c.organization_id == org_id, dnc_numbers.c.phone_number == number)
    )
    return bool(result.rowcount)


async def dnc_list(
    conn: AsyncConnection, org_id: str, number: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(dnc_numbers, dnc_numbers.c.phone_number.label("id")).where(dnc_numbers.c.organization_id == org_id)
    if number:
        stmt = stmt.where(dnc_numbers.c.phone_number == number)
    return await page(conn, stmt, dnc_numbers.c.phone_number, limit, cursor)


async def put_on_dnc(
    conn: AsyncConnection, org_id: str, number: str, reason: str, source: str, now: datetime
) -> tuple[bool, dict[str, dict[str, int]]]:
    """List `number` on the organization's DNC list and skip its due leads in every campaign. Returns
    (it was not listed before, the counter changes per campaign: {campaign_id: {old status: -n, skipped: +n}})."""
    added = bool(await dnc_added(conn, org_id, [number], reason, source, now))
    await consent_repo.revoke_numbers(conn, org_id, [number], source, now)  # an opt-out ends consent at once
    moved = await _skip_number_everywhere(conn, org_id, number, "on the do-not-call list", now)
    deltas = {cid: {**{s: -n for s, n in per.items()}, ls.SKIPPED: sum(per.values())} for cid, per in moved.items()}
    return added, deltas


async def _skip_number_everywhere(
    conn: AsyncConnection, org_id: str, number: str, reason: str, now: datetime
) -> dict[str, dict[str, int]]:
    """Due leads of `number` in every campaign of the organization become skipped.
    Returns {campaign_id: {old status: how many}}."""
    stmt = sa.select(leads.c.id, leads.c.campaign_id, leads.c.status).where(
        leads.c.organization_id == org_id, leads.c.phone_number == number, leads.c.status.in_(ls.DUE)
    )
    moved: dict[str, dict[str, int]] = {}
    ids = []
    for lead_id, campaign_id, status in await conn.execute(stmt):
        ids.append(lead_id)
        per = moved.setdefault(campaign_id, {})
        per[status] = per.get(status, 0) + 1
    if ids:
        await conn.execute(
            leads.update()
            .where(leads.c.id.in_(ids))
            .values(status=ls.SKIPPED, reason=reason, next_attempt_at=None, finished_at=now, updated_at=now)
        )
    return moved
