"""Calls (attempts): the intent to dial, their state, and the lookups the guards and the agent side need."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain.abandonment import AbandonRate
from dialwave.domain.outcomes import VOICEMAIL
from dialwave.store.db import inline_sqlite
from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import (
    IN_CHUNK,
    driver_rows,
    equal_to,
    from_sqlite_time,
    latest_per_number,
    one_of,
    sqlite_insert,
    sqlite_time,
    update_many,
)
from dialwave.store.tables import LIVE, calls
from dialwave.store.types import UTCDateTime

LIVE_CALL = ("pending", "dialing", "ringing", "in_call")


async def get_call(conn: AsyncConnection, org_id: str, call_id: str, lock: bool = False) -> RowMapping | None:
    """`lock`: FOR UPDATE (PostgreSQL), so a result post and the engine's hang-up write of this call
    happen one after the other (SQLite serialises writers anyway)."""
    stmt = sa.select(calls).where(calls.c.id == call_id, calls.c.organization_id == org_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def list_calls(
    conn: AsyncConnection, org_id: str, filters: Mapping[str, Any], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """`filters`: column -> value (campaign_id, lead_id, outcome, to_number)."""
    stmt = equal_to(sa.select(calls).where(calls.c.organization_id == org_id), calls, filters)
    return await page(conn, stmt, calls.c.id, limit, cursor)


async def call_by_id(conn: AsyncConnection, call_id: str) -> RowMapping | None:
    """A call by id alone (a call token names only its call; the organization comes from the row)."""
    return (await conn.execute(sa.select(calls).where(calls.c.id == call_id))).mappings().first()


async def reached_before(conn: AsyncConnection, org_id: str, number: str, call_id: str) -> bool:
    """Was this number answered by an earlier call of the organization (the `returning` flag)?"""
    this = sa.select(calls.c.started_at).where(calls.c.id == call_id).scalar_subquery()
    stmt = (
        sa.select(calls.c.id)
        .where(
            calls.c.organization_id == org_id,
            calls.c.to_number == number,
            calls.c.id != call_id,
            calls.c.answered_at.is_not(None),
            calls.c.started_at < this,
        )
        .limit(1)
    )
    return (await conn.execute(stmt)).first() is not None


async def attempts_since(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    """Start times of the organization's attempts to each number since `since` (any campaign)."""
    found: dict[str, list[datetime]] = {}
    if conn.dialect.name == "sqlite":  # every claim of numbers under a cap asks: the driver alone
        for i in range(0, len(numbers), IN_CHUNK):
            chunk = tuple(numbers[i : i + IN_CHUNK])
            sql = (
                "SELECT to_number, started_at FROM calls WHERE organization_id = ? "
                f"AND to_number IN ({', '.join('?' for _ in chunk)}) AND started_at >= ?"
            )
            for number, started in await driver_rows(conn, sql, (org_id, *chunk, sqlite_time(since))):
                found.setdefault(number, []).append(datetime.fromisoformat(started).replace(tzinfo=UTC))
        return found
    for condition in one_of(conn, calls.c.to_number, numbers):
        stmt = sa.select(calls.c.to_number, calls.c.started_at).where(
            calls.c.organization_id == org_id, condition, calls.c.started_at >= since
        )
        for number, started in await conn.execute(stmt):
            found.setdefault(number, []).append(started)
    return found


async def last_answered(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When each number last answered (any campaign of the organization), if since `since`."""
    return await latest_per_number(
        conn,
        calls.c.to_number,
        calls.c.answered_at,
        numbers,
        calls.c.organization_id == org_id,
        calls.c.started_at >= since,
        calls.c.outcome.in_(("answered", "short_duration", "opted_out")),
    )


async def last_refused(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When each number last refused (an answered call whose result says conversion false: see
    docs/compliance.md), in any campaign of the organization, if it ended since `since`."""
    return await latest_per_number(
        conn,
        calls.c.to_number,
        calls.c.ended_at,
        numbers,
        calls.c.organization_id == org_id,
        calls.c.started_at >= since - timedelta(days=1),  # the index's column; no call lasts a day
        calls.c.ended_at >= since,
        calls.c.conversion.is_(False),
    )


async def last_abandoned(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When a call to each number was last abandoned (any campaign of the organization), if since `since`."""
    return await latest_per_number(
        conn,
        calls.c.to_number,
        calls.c.ended_at,
        numbers,
        calls.c.organization_id == org_id,
        calls.c.started_at >= since - ABANDONED_CALL_SPAN,
        calls.c.ended_at >= since,
        calls.c.abandoned.is_(True),
    )


ABANDONED_CALL_SPAN = timedelta(days=1)  # a call ends at most this long after it started (bounds the lookup)


async def abandon_counts(conn: AsyncConnection, campaign_ids: Sequence[str], since: datetime) -> dict[str, AbandonRate]:
    """Per campaign: abandoned calls and live answers (answered, not by a machine, ended) since `since`
    (ix_calls_campaign_answered: the index alone answers)."""
    found = {c: AbandonRate(0, 0) for c in campaign_ids}
    abandoned = sa.func.sum(sa.case((calls.c.abandoned.is_(True), 1), else_=0))
    for condition in one_of(conn, calls.c.campaign_id, campaign_ids):
        stmt = (
            sa.select(calls.c.campaign_id, abandoned, sa.func.count())
            .where(
                condition,
                calls.c.answered_at.is_not(None),
                calls.c.answered_at >= since,
                calls.c.outcome.is_not(None),
                calls.c.outcome != VOICEMAIL,
            )
            .group_by(calls.c.campaign_id)
        )
        for campaign_id, gave_up, live in await conn.execute(stmt):
            found[campaign_id] = AbandonRate(int(gave_up or 0), int(live))
    return found


async def insert_calls(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows and conn.dialect.name == "sqlite":
        await sqlite_insert(conn, calls, rows)
    elif rows:
        await conn.execute(calls.insert(), rows)


async def delete_pending_calls(conn: AsyncConnection, call_ids: Sequence[str]) -> None:
    for condition in one_of(conn, calls.c.id, call_ids):
        await conn.execute(calls.delete().where(condition, calls.c.status == "pending"))


async def update_calls(conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
    await update_many(conn, calls, rows)


async def live_calls(conn: AsyncConnection, campaign_ids: Sequence[str]) -> Sequence[RowMapping]:
    """Calls between intent and hang-up of these campaigns."""
    found: list[RowMapping] = []
    for condition in one_of(conn, calls.c.campaign_id, campaign_ids):
        stmt = sa.select(calls).where(condition, calls.c.status.in_(LIVE_CALL))
        found.extend((await conn.execute(stmt)).mappings().all())
    return found


_TIMES = [c.name for c in calls.columns if isinstance(c.type, UTCDateTime)]
_FLOATS = [c.name for c in calls.columns if isinstance(c.type, sa.Float)]
_FLAGS = [c.name for c in calls.columns if isinstance(c.type, sa.Boolean)]


_STORED_DEFAULTS: dict[str, Any] = {**dict.fromkeys(c.name for c in calls.columns), "abandoned": False}


def as_stored(values: Mapping[str, Any]) -> dict[str, Any]:
    """A call row held in memory (a forecast's) as the database would return it: every column, the
    defaults filled in, times in UTC, floats and flags of their column's type."""
    row = {**_STORED_DEFAULTS, **values}
    for name in _TIMES:
        value = row[name]
        if value is not None and value.tzinfo is not UTC:
            row[name] = value.astimezone(UTC)
    for name in _FLOATS:
        if row[name] is not None:
            row[name] = float(row[name])
    for name in _FLAGS:
        if row[name] is not None:
            row[name] = bool(row[name])
    return row


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BY_ID = itemgetter("id")
_BY_START = itemgetter("started_at")


def _start_key(row: Mapping[str, Any]) -> tuple[bool, datetime, str]:
    started = row.get("started_at")
    return (started is not None, started or _EPOCH, row["id"])


def in_start_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows in stream_campaign_calls' order (started_at, NULL first, then id), sorted in place.
    When every row has started (a forecast's end), two stable sorts, by id then by start, each with
    a key read in C, rather than one by a tuple built per row; otherwise by the tuple."""
    if all(row.get("started_at") is not None for row in rows):
        rows.sort(key=_BY_ID)
        rows.sort(key=_BY_START)
    else:
        rows.sort(key=_start_key)
    return rows


async def stream_campaign_calls(conn: AsyncConnection, campaign_id: str) -> AsyncIterator[RowMapping]:
    """Every call of a campaign in start order, streamed (a forecast's calls.jsonl)."""
    stmt = sa.select(calls).where(calls.c.campaign_id == campaign_id).order_by(calls.c.started_at, calls.c.id)
    raw = inline_sqlite(conn)
    if raw is not None:  # a simulation's export of every attempt: rows read by the driver alone
        compiled = stmt.compile(dialect=conn.dialect)
        cursor = raw.execute(compiled.string, (campaign_id,))
        names = [d[0] for d in cursor.description]
        times = [i for i, c in enumerate(calls.columns) if isinstance(c.type, UTCDateTime)]
        flags = [i for i, c in enumerate(calls.columns) if isinstance(c.type, sa.Boolean)]
        while chunk := cursor.fetchmany(1000):
            for values in chunk:
                fields = list(values)
                for i in times:
                    fields[i] = from_sqlite_time(fields[i])
                for i in flags:
                    fields[i] = None if fields[i] is None else bool(fields[i])
                yield dict(zip(names, fields, strict=True))  # type: ignore[misc]
        return
    async for part in (await conn.stream(stmt)).mappings().partitions(1000):  # one await per 1,000 rows
        for row in part:
            yield row


async def live_counts(conn: AsyncConnection, campaign_id: str) -> dict[str, int]:
    """The campaign's live calls by status: `pending` (claimed, not yet handed to the carrier), `dialing`,
    `ringing`, `in_call` (ix_calls_live)."""
    stmt = (
        sa.select(calls.c.status, sa.func.count())
        .where(calls.c.campaign_id == campaign_id, LIVE)
        .group_by(calls.c.status)
    )
    return {status: int(n) for status, n in await conn.execute(stmt)}


async def recent_attempts(
    conn: AsyncConnection, campaign_id: str, since: datetime
) -> list[tuple[datetime, str, str | None]]:
    """(started_at, status, outcome) of the campaign's attempts started since `since`."""
    stmt = sa.select(calls.c.started_at, calls.c.status, calls.c.outcome).where(
        calls.c.campaign_id == campaign_id, calls.c.started_at >= since
    )
    return [(r.started_at, r.status, r.outcome) for r in await conn.execute(stmt)]


async def ended_calls(conn: AsyncConnection, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's ended calls: outcome, started_at, answered_at, ended_at, conversion (a forecast's basis)."""
    cols = (calls.c.outcome, calls.c.started_at, calls.c.answered_at, calls.c.ended_at, calls.c.conversion)
    stmt = sa.select(*cols).where(calls.c.campaign_id == campaign_id, calls.c.outcome.is_not(None))
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]
