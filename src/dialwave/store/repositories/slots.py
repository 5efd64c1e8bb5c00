"""Concurrency slots across workers (PostgreSQL): one `dial_slots` row per call in flight, inserted
when a worker is granted the start of an attempt, deleted when the call ends. Grants of one
organization are serialised by a transaction advisory lock on it (caller ids belong to one
organization, so that lock covers the campaign, organization and caller-id caps at once); a
per-number attempt cap takes a lock on (organization, number) too. `engine/slots.py` decides."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import campaigns, dial_slots

RUNNING = ("active", "scheduled", "paused")


def org_key(org_id: str) -> str:
    return f"slots:{org_id}"


def number_key(org_id: str, number: str) -> str:
    return f"number:{org_id}:{number}"


async def lock_keys(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Transaction advisory locks on these keys, taken in one global order (no deadlock between workers)."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    await conn.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT hashtextextended(x, 0) AS k FROM unnest(CAST(:keys AS text[])) AS x ORDER BY 1 OFFSET 0) AS s"
        ),
        {"keys": wanted},
    )


async def campaign_states(conn: AsyncConnection, campaign_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Committed (status, version) of campaigns, under a share lock: a pause or an edit committing after
    this waits for the transaction, one committed before it is seen."""
    stmt = (
        sa.select(campaigns.c.id, campaigns.c.status, campaigns.c.version)
        .where(campaigns.c.id == sa.any_(sa.cast(list(campaign_ids), postgresql.ARRAY(sa.String))))
        .order_by(campaigns.c.id)
        .with_for_update(read=True)
    )
    return {row.id: (row.status, row.version) for row in await conn.execute(stmt)}


async def held(conn: AsyncConnection, org_ids: Sequence[str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Slots held now per organization, campaign and caller id (of these organizations)."""
    stmt = (
        sa.select(dial_slots.c.organization_id, dial_slots.c.campaign_id, dial_slots.c.caller_id, sa.func.count())
        .where(dial_slots.c.organization_id == sa.any_(sa.cast(list(org_ids), postgresql.ARRAY(sa.String))))
        .group_by(dial_slots.c.organization_id, dial_slots.c.campaign_id, dial_slots.c.caller_id)
    )
    orgs: Counter[str] = Counter()
    camps: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    for org_id, campaign_id, caller_id, n in await conn.execute(stmt):
        orgs[org_id] += n
        camps[campaign_id] += n
        callers[caller_id] += n
    return orgs, camps, callers


async def insert_slots(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = postgresql.insert(dial_slots)
        stmt = stmt.on_conflict_do_update(index_elements=["call_id"], set_={"worker_key": stmt.excluded.worker_key})
        await conn.execute(stmt, rows)


async def delete_slots(conn: AsyncConnection, call_ids: Sequence[str]) -> None:
    if call_ids:
        await conn.execute(
            dial_slots.delete().where(
                dial_slots.c.call_id == sa.any_(sa.cast(list(call_ids), postgresql.ARRAY(sa.String)))
            )
        )


async def keep_only(conn: AsyncConnection, campaign_ids: Sequence[str], live: list[dict[str, Any]]) -> None:
    """A worker took these campaigns over: the slots of their calls it now holds are its own, every
    other slot of theirs (a dead worker's) is freed."""
    ids = [row["call_id"] for row in live]
    stmt = dial_slots.delete().where(
        dial_slots.c.campaign_id == sa.any_(sa.cast(list(campaign_ids), postgresql.ARRAY(sa.String)))
    )
    if ids:
        stmt = stmt.where(dial_slots.c.call_id != sa.all_(sa.cast(ids, postgresql.ARRAY(sa.String))))
    await conn.execute(stmt)
    await insert_slots(conn, live)


WORKER_LOCKS = 0x0D1A1  # the advisory-lock space of workers' liveness locks (two-key form: space, worker key)
# Advisory locks are per database, pg_locks shows every database of the server: only this one's count.
_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"
_ALIVE = (
    "SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted"
    f" AND l.database = {_THIS_DATABASE} AND l.classid = {WORKER_LOCKS} AND l.objid = s.worker_key"
)


async def sweep(conn: AsyncConnection) -> int:
    """Free the slots of dead workers (their session lock is gone) in campaigns no worker runs any more
    (a running campaign's are freed by the worker taking it over, after it reconciled the calls)."""
    result = await conn.execute(
        sa.text(
            f"DELETE FROM dial_slots s WHERE NOT EXISTS ({_ALIVE})"
            " AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = s.campaign_id AND c.status = ANY(:running))"
        ),
        {"running": list(RUNNING)},
    )
    return int(result.rowcount or 0)


async def hold_worker_key(conn: AsyncConnection, key: int) -> None:
    """The worker's liveness: a session advisory lock on its key, for as long as its session lives."""
    await conn.execute(sa.text(f"SELECT pg_advisory_lock({WORKER_LOCKS}, :key)"), {"key": key})


async def live_workers(conn: AsyncConnection) -> int:
    """How many workers are alive (hold their liveness lock) now."""
    stmt = sa.text(
        f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
        f" AND database = {_THIS_DATABASE} AND classid = {WORKER_LOCKS}"
    )
    return int(await conn.scalar(stmt) or 0)
