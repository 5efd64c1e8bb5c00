"""Leads, the do-not-call list and calls (attempts)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.repositories.campaigns import add_counts
from dialwave.store.repositories.paging import page
from dialwave.store.tables import calls, dnc_numbers, leads

_IN_CHUNK = 900  # stays under SQLite's bound-parameter limit


async def _insert_ignore(
    conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]], key: sa.Column[Any] | None = None
) -> list[Any]:
    """Insert rows, skipping those that hit a unique key; returns the `key` (default: the first primary
    key column) of each inserted row.

    Counted with RETURNING: asyncpg's executemany reports no row count, so a count from rowcount
    would take skipped rows for inserted ones."""
    if not rows:
        return []
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    key = key if key is not None else next(iter(table.primary_key.columns))
    stmt = dialect_insert(table).on_conflict_do_nothing().returning(key)
    result = await conn.execute(stmt, rows)
    return list(result.scalars().all())


def _one_of(conn: AsyncConnection, column: sa.Column[str], values: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    """`column IN values`, as few statements as possible: PostgreSQL takes one array parameter (a long
    IN list of parameters gets a poor generic plan there); SQLite takes chunks under its parameter limit."""
    if conn.dialect.name == "postgresql":
        return [column == sa.any_(sa.bindparam("values", list(values), type_=postgresql.ARRAY(sa.String)))]
    return [column.in_(values[i : i + _IN_CHUNK]) for i in range(0, len(values), _IN_CHUNK)]


class NewLead(NamedTuple):
    id: str
    phone_number: str
    variables: dict[str, Any]
    timezone: str | None
    agent_overrides: dict[str, Any] | None


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

    def without(self, numbers: set[str]) -> LeadBatch:
        return LeadBatch([row for row in self.rows if row.phone_number not in numbers])


# SQLite: a whole batch in one statement, its rows in one JSON parameter unpacked by json_each in C.
# A per-row executemany releases and retakes the GIL at every row, so the import's parsing thread stalls
# the insert (and the other way round); this way the insert runs without the GIL while parsing goes on.
_SQLITE_INSERT = (
    "INSERT INTO leads (id, organization_id, campaign_id, phone_number, variables, timezone, agent_overrides,"
    " status, attempts, next_attempt_at, created_at, updated_at)"
    " SELECT json_extract(value, '$[0]'), :org, :campaign, json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    " 'queued', 0, :now, :now, :now FROM json_each(:batch) WHERE true"  # WHERE: ON CONFLICT is not a join
    " ON CONFLICT DO NOTHING"
)


# PostgreSQL: the same, one statement per batch, the rows unpacked from one jsonb parameter (SQLAlchemy's
# executemany with RETURNING ran 16k to 19k rows/s).
_POSTGRES_INSERT = sa.text(
    "INSERT INTO leads (id, organization_id, campaign_id, phone_number, variables, timezone, agent_overrides,"
    " status, attempts, next_attempt_at, created_at, updated_at)"
    " SELECT r->>0, :org, :campaign, r->>1, r->2, r->>3, r->4, 'queued', 0, :now, :now, :now"
    " FROM jsonb_array_elements(CAST(:batch AS jsonb)) AS r ON CONFLICT DO NOTHING"
).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))


def sqlite_time(value: datetime) -> str:
    """The storage format SQLAlchemy's SQLite DateTime reads back (UTC, naive)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


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
    conn: AsyncConnection, campaign_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(leads).where(leads.c.campaign_id == campaign_id)
    if status:
        stmt = stmt.where(leads.c.status == status)
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


async def dnc_is_empty(conn: AsyncConnection, org_id: str) -> bool:
    stmt = sa.select(dnc_numbers.c.phone_number).where(dnc_numbers.c.organization_id == org_id).limit(1)
    return (await conn.scalar(stmt)) is None


async def dnc_contains(conn: AsyncConnection, org_id: str, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for condition in _one_of(conn, dnc_numbers.c.phone_number, numbers):
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
    return [str(n) for n in await _insert_ignore(conn, dnc_numbers, rows, dnc_numbers.c.phone_number)]


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


async def get_call(conn: AsyncConnection, org_id: str, call_id: str, lock: bool = False) -> RowMapping | None:
    """`lock`: FOR UPDATE (PostgreSQL), so a result post and the engine's hang-up write of this call
    happen one after the other (SQLite serialises writers anyway)."""
    stmt = sa.select(calls).where(calls.c.id == call_id, calls.c.organization_id == org_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def list_calls(
    conn: AsyncConnection,
    org_id: str,
    campaign_id: str | None,
    lead_id: str | None,
    outcome: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[RowMapping], str | None]:
    stmt = sa.select(calls).where(calls.c.organization_id == org_id)
    if campaign_id:
        stmt = stmt.where(calls.c.campaign_id == campaign_id)
    if lead_id:
        stmt = stmt.where(calls.c.lead_id == lead_id)
    if outcome:
        stmt = stmt.where(calls.c.outcome == outcome)
    return await page(conn, stmt, calls.c.id, limit, cursor)


async def refresh_statistics(conn: AsyncConnection) -> None:
    """PostgreSQL: re-sample the leads table, so the dispatcher's claims get good plans at once after a
    bulk load instead of after autovacuum's next ANALYZE. (SQLite plans these queries from the schema.)"""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("ANALYZE leads")


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


async def call_by_id(conn: AsyncConnection, call_id: str) -> RowMapping | None:
    """A call by id alone (a call token names only its call; the organization comes from the row)."""
    return (await conn.execute(sa.select(calls).where(calls.c.id == call_id))).mappings().first()
