"""Leads: bulk inserts, reads, the dispatcher's claims and batched updates, cancellation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.domain import lead_states as ls
from dialwave.domain.leads import ClaimedLead
from dialwave.store.repositories.campaigns import add_counts
from dialwave.store.repositories.paging import page
from dialwave.store.repositories.sql import (
    driver_rows,
    equal_to,
    from_sqlite_json,
    from_sqlite_time,
    latest_per_number,
    one_of,
    sqlite_time,
    update_many,
)
from dialwave.store.tables import leads


class NewLead(NamedTuple):
    id: str
    phone_number: str
    variables: dict[str, Any]
    timezone: str | None
    agent_overrides: dict[str, Any] | None
    region: str | None = None  # ISO 3166-2 (US-TX)


class LeadBatch:
    """The new leads of one insert, and their JSON encoding (the insert's one parameter), which the
    caller may have made ahead (`encoded()`) while the database was busy with the batch before."""

    def __init__(self, rows: list[NewLead]) -> None:
        self.rows = rows
        self._encoded: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def encoded(self) -> str:
        if self._encoded is None:
            self._encoded = json.dumps(self.rows, separators=(",", ":"))
        return self._encoded

    def encode_in_steps(self, rows_per_step: int) -> Iterator[None]:
        """Encode the batch a slice of rows at a time: the caller lets its event loop run between steps
        (5,000 rows of 200 variables took about 100 ms in one go)."""
        parts = []
        for i in range(0, len(self.rows), rows_per_step):
            parts.append(json.dumps(self.rows[i : i + rows_per_step], separators=(",", ":"))[1:-1])
            yield
        self._encoded = "[" + ",".join(parts) + "]"

    def without(self, numbers: set[str]) -> LeadBatch:
        return LeadBatch([row for row in self.rows if row.phone_number not in numbers])


# SQLite: a whole batch in one statement, its rows in one JSON parameter unpacked by json_each in C.
# A per-row executemany releases and retakes the GIL at every row, so the import's parsing thread stalls
# the insert (and the other way round); this way the insert runs without the GIL while parsing goes on.
_SQLITE_INSERT = (
    "INSERT INTO leads (id, organization_id, campaign_id, phone_number, variables, timezone, agent_overrides,"
    " region, status, attempts, next_attempt_at, created_at, updated_at)"
    " SELECT json_extract(value, '$[0]'), :org, :campaign, json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    # WHERE true: ON CONFLICT is not a join
    " json_extract(value, '$[5]'), 'queued', 0, :now, :now, :now FROM json_each(:batch) WHERE true"
    " ON CONFLICT DO NOTHING"
)


# PostgreSQL: the same, one statement per batch, the rows unpacked from one jsonb parameter (SQLAlchemy's
# executemany with RETURNING ran 16k to 19k rows/s).
_POSTGRES_INSERT = sa.text(
    "INSERT INTO leads (id, organization_id, campaign_id, phone_number, variables, timezone, agent_overrides,"
    " region, status, attempts, next_attempt_at, created_at, updated_at)"
    " SELECT r->>0, :org, :campaign, r->>1, r->2, r->>3, r->4, r->>5, 'queued', 0, :now, :now, :now"
    " FROM jsonb_array_elements(CAST(:batch AS jsonb)) AS r ON CONFLICT DO NOTHING"
).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))


async def insert_leads(conn: AsyncConnection, org_id: str, campaign_id: str, now: datetime, batch: LeadBatch) -> int:
    """Insert queued leads, due `now`, skipping numbers already in the campaign; returns how many were new."""
    if not batch.rows:
        return 0
    if conn.dialect.name == "sqlite":
        values = {"org": org_id, "campaign": campaign_id, "now": sqlite_time(now), "batch": batch.encoded()}
        result = await conn.exec_driver_sql(_SQLITE_INSERT, values)
        return int(result.rowcount)  # sqlite3_changes(): the rows inserted, not those skipped
    params: dict[str, Any] = {"org": org_id, "campaign": campaign_id, "now": now, "batch": batch.encoded()}
    result = await conn.execute(_POSTGRES_INSERT, params)
    return int(result.rowcount)


async def get_lead(conn: AsyncConnection, org_id: str, campaign_id: str, lead_id: str) -> RowMapping | None:
    stmt = sa.select(leads).where(
        leads.c.id == lead_id, leads.c.campaign_id == campaign_id, leads.c.organization_id == org_id
    )
    return (await conn.execute(stmt)).mappings().first()


async def list_leads(
    conn: AsyncConnection, campaign_id: str, filters: Mapping[str, Any], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    """`filters`: column -> value (status, phone_number, last_outcome)."""
    stmt = equal_to(sa.select(leads).where(leads.c.campaign_id == campaign_id), leads, filters)
    return await page(conn, stmt, leads.c.id, limit, cursor)


async def delete_lead(conn: AsyncConnection, lead_id: str) -> None:
    await conn.execute(leads.delete().where(leads.c.id == lead_id))


async def cancel_open_leads(conn: AsyncConnection, campaign_id: str, reason: str, now: datetime) -> int:
    """Queued and retry-pending leads of a campaign that ends become cancelled, counters included;
    returns how many."""
    moved: dict[str, int] = {}
    for status in ("queued", "retry_pending"):
        result = await conn.execute(
            leads.update()
            .where(leads.c.campaign_id == campaign_id, leads.c.status == status)
            .values(status="cancelled", reason=reason, next_attempt_at=None, finished_at=now, updated_at=now)
        )
        moved[status] = int(result.rowcount or 0)
    total = moved["queued"] + moved["retry_pending"]
    await add_counts(conn, campaign_id, queued=-moved["queued"], retry_pending=-moved["retry_pending"], cancelled=total)
    return total


async def refresh_statistics(conn: AsyncConnection) -> None:
    """PostgreSQL: re-sample the leads table, so the dispatcher's claims get good plans at once after a
    bulk load instead of after autovacuum's next ANALYZE. (SQLite plans these queries from the schema.)"""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("ANALYZE leads")


_LEAD_CLAIM_COLUMNS = (
    leads.c.id,
    leads.c.organization_id,
    leads.c.campaign_id,
    leads.c.phone_number,
    leads.c.variables,
    leads.c.timezone,
    leads.c.region,
    leads.c.agent_overrides,
    leads.c.status,
    leads.c.attempts,
    leads.c.retries,
    leads.c.next_attempt_at,
)


def _claimed(row: RowMapping) -> ClaimedLead:
    return ClaimedLead(
        row["id"],
        row["phone_number"],
        row["timezone"],
        row["variables"] or {},
        row["agent_overrides"],
        row["status"],
        row["attempts"],
        dict(row["retries"] or {}),
        row["next_attempt_at"],
        row["region"],
    )


_FIRST_DUE = "SELECT next_attempt_at FROM leads WHERE campaign_id = ? AND status = ? ORDER BY next_attempt_at LIMIT 1"


async def next_due_at(conn: AsyncConnection, campaign_id: str) -> datetime | None:
    if conn.dialect.name == "sqlite":
        # The dispatcher asks after every claim. One statement over both due statuses reads and sorts
        # every waiting lead of the campaign; the first of each status's ordered range is one index step.
        # NULL sorts first in SQLite: a due lead without a time answers None, as that statement did.
        firsts = []
        for status in ls.DUE:
            found = await driver_rows(conn, _FIRST_DUE, (campaign_id, status))
            if found:
                if found[0][0] is None:
                    return None
                firsts.append(found[0][0])
        return from_sqlite_time(min(firsts)) if firsts else None
    stmt = (
        sa.select(leads.c.next_attempt_at)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE))
        .order_by(leads.c.next_attempt_at)
        .limit(1)
    )
    value: datetime | None = await conn.scalar(stmt)
    return value


async def first_waiting(conn: AsyncConnection, campaign_id: str) -> RowMapping | None:
    """The waiting lead (queued or retry-pending) due first."""
    stmt = (
        sa.select(leads)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE))
        .order_by(leads.c.next_attempt_at)
        .limit(1)
    )
    return (await conn.execute(stmt)).mappings().first()


async def claim_due(conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> list[ClaimedLead]:
    """Due leads in next_attempt_at order, locked for this transaction (PostgreSQL: SKIP LOCKED, so
    workers never wait on each other; SQLite: the single writer transaction holds them)."""
    stmt = (
        sa.select(*_LEAD_CLAIM_COLUMNS)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE), leads.c.next_attempt_at <= now)
        .order_by(leads.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    elif conn.dialect.name == "sqlite":
        return await _claim_due_sqlite(conn, campaign_id, now, limit)
    return [_claimed(row) for row in (await conn.execute(stmt)).mappings()]


_CLAIM_NAMES = tuple(column.name for column in _LEAD_CLAIM_COLUMNS)
_CLAIM_ONE_STATUS = (
    f"SELECT {', '.join(_CLAIM_NAMES)}, rowid FROM leads WHERE campaign_id = ? AND status = ? "
    "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
)
_JSON_AT = tuple(i for i, c in enumerate(_LEAD_CLAIM_COLUMNS) if c.name in ("variables", "agent_overrides", "retries"))
_TIME_AT, _STATUS_AT, _ROWID_AT = _CLAIM_NAMES.index("next_attempt_at"), _CLAIM_NAMES.index("status"), len(_CLAIM_NAMES)


async def _claim_due_sqlite(conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> list[ClaimedLead]:
    """claim_due on SQLite, in the order SQLite gives the one-statement query (`status IN (...)`
    ORDER BY next_attempt_at): by next_attempt_at, then status, then rowid. That query reads and sorts
    every due lead of the campaign to return `limit` of them (at the start of a 50,000-lead campaign,
    50,000 rows per claim); one ordered range per status reads `limit` rows each, merged here.
    tests/integration/test_claim_order.py checks the two orders agree. Rows are read by the driver
    (the same columns as claim_due's statement, converted as their types would)."""
    at = sqlite_time(now)
    found: list[Sequence[Any]] = []
    for status in ls.DUE:
        found.extend(await driver_rows(conn, _CLAIM_ONE_STATUS, (campaign_id, status, at, limit)))
    found.sort(key=lambda row: (row[_TIME_AT], row[_STATUS_AT], row[_ROWID_AT]))
    claimed = []
    for row in found[:limit]:
        values = list(row[:_ROWID_AT])
        for i in _JSON_AT:
            values[i] = from_sqlite_json(values[i])
        values[_TIME_AT] = from_sqlite_time(values[_TIME_AT])
        claimed.append(_claimed(dict(zip(_CLAIM_NAMES, values, strict=True))))  # type: ignore[arg-type]
    return claimed


_OPEN = tuple(sorted(ls.FINAL))
_OPEN_LEADS = (
    "SELECT id, organization_id, phone_number, variables, timezone, region, agent_overrides, status, attempts,"
    " retries, next_attempt_at, rowid FROM leads"
    f" WHERE campaign_id = ? AND status NOT IN ({', '.join('?' for _ in _OPEN)})"
)


async def open_leads_sqlite(conn: AsyncConnection, campaign_id: str) -> list[tuple[str, int, ClaimedLead]]:
    """(organization id, rowid, lead) of the campaign's leads not in a final status (SQLite: a
    forecast's in-memory store holds them, read once: 50,000 rows at the start of a 50,000-lead
    forecast; rowid orders ties as claim_due does). Each row becomes its lead as `_claimed` makes it
    from a mapping, read by position (tests/integration/test_open_leads.py compares the two)."""
    json_of, when = from_sqlite_json, from_sqlite_time
    found = []
    for row in await driver_rows(conn, _OPEN_LEADS, (campaign_id, *_OPEN)):
        lead_id, org_id, phone, variables, timezone, region, overrides, status, attempts, retries, due, rowid = row
        lead = ClaimedLead(
            lead_id,
            phone,
            timezone,
            json_of(variables) or {},
            json_of(overrides),
            status,
            attempts,
            dict(json_of(retries) or {}),
            when(due),
            region,
        )
        found.append((org_id, rowid, lead))
    return found


async def lead_rows(conn: AsyncConnection, lead_ids: Sequence[str]) -> dict[str, ClaimedLead]:
    found: dict[str, ClaimedLead] = {}
    for condition in one_of(conn, leads.c.id, lead_ids):
        for row in (await conn.execute(sa.select(*_LEAD_CLAIM_COLUMNS).where(condition))).mappings():
            found[row["id"]] = _claimed(row)
    return found


async def last_completed(
    conn: AsyncConnection, org_id: str, numbers: Sequence[str], since: datetime
) -> dict[str, datetime]:
    """When a lead for each number last completed in any campaign of the organization, if since `since`."""
    return await latest_per_number(
        conn,
        leads.c.phone_number,
        leads.c.finished_at,
        numbers,
        leads.c.organization_id == org_id,
        leads.c.status == ls.COMPLETED,
        leads.c.finished_at >= since,
    )


async def update_leads(conn: AsyncConnection, rows: dict[str, dict[str, Any]]) -> None:
    await update_many(conn, leads, rows)


def _due_after_replan(now: datetime) -> sa.ColumnElement[datetime]:
    """A waiting lead's earliest instant as its retry policy (or callback) set it, or now."""
    now_value = sa.literal(now, type_=leads.c.next_attempt_at.type)
    return sa.case((leads.c.earliest_at > now_value, leads.c.earliest_at), else_=now_value)


async def replan_batch(conn: AsyncConnection, campaign_id: str, now: datetime, limit: int) -> int:
    """Up to `limit` waiting leads of the campaign deferred past their earliest instant (the latest
    first) come due at it, or now: the claim then places each at its next dialable time under the
    schedule as it is now. Writes only leads that move; returns how many moved."""
    due = _due_after_replan(now)
    waiting = (
        sa.select(leads.c.id)
        .where(leads.c.campaign_id == campaign_id, leads.c.status.in_(ls.DUE), leads.c.next_attempt_at > due)
        .order_by(leads.c.next_attempt_at.desc())
        .limit(limit)
    )
    stmt = leads.update().where(leads.c.id.in_(waiting.scalar_subquery())).values(next_attempt_at=due, updated_at=now)
    return int((await conn.execute(stmt)).rowcount or 0)


async def replan_lead(conn: AsyncConnection, lead_id: str, now: datetime) -> bool:
    """One waiting lead deferred past its earliest instant comes due at it, or now."""
    due = _due_after_replan(now)
    stmt = (
        leads.update()
        .where(leads.c.id == lead_id, leads.c.status.in_(ls.DUE), leads.c.next_attempt_at > due)
        .values(next_attempt_at=due, updated_at=now)
    )
    return bool((await conn.execute(stmt)).rowcount)


async def variables_lacking(conn: AsyncConnection, campaign_id: str, names: Sequence[str]) -> set[str] | None:
    """Which of `names` some lead of the campaign still to be dialed (not in a final status) lacks;
    None when it has no such lead."""
    lacking: set[str] = set()
    open_leads = sa.and_(leads.c.campaign_id == campaign_id, leads.c.status.not_in(ls.FINAL))
    if await conn.scalar(sa.select(leads.c.id).where(open_leads).limit(1)) is None:
        return None
    for name in names:
        if conn.dialect.name == "postgresql":
            has = sa.cast(leads.c.variables, postgresql.JSONB).has_key(name)
        else:
            has = sa.func.json_type(leads.c.variables, f'$."{name}"').is_not(None)
        if await conn.scalar(sa.select(leads.c.id).where(open_leads, sa.not_(has)).limit(1)) is not None:
            lacking.add(name)
    return lacking


async def update_lead(conn: AsyncConnection, lead_id: str, values: dict[str, Any]) -> None:
    await conn.execute(leads.update().where(leads.c.id == lead_id).values(**values))


async def remaining_leads(conn: AsyncConnection, campaign_id: str) -> list[RowMapping]:
    """The campaign's leads still to dial or in flight (queued, retry-pending, dialing, in a call), by id."""
    stmt = (
        sa.select(leads)
        .where(
            leads.c.campaign_id == campaign_id, leads.c.status.in_(("queued", "retry_pending", "dialing", "in_call"))
        )
        .order_by(leads.c.id)
    )
    return list((await conn.execute(stmt)).mappings())
