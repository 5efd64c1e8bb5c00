"""On SQLite, the claim reads one ordered range per due status and merges them: the same leads in the
same order as the one statement it replaced (`status IN (queued, retry_pending) ... ORDER BY
next_attempt_at LIMIT n`), including leads due at the same instant, which decide who is dialed first.
The next due time likewise (a lead without a time among them: None)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain import lead_states as ls
from dialwave.store.db import Database, inline_sqlite
from dialwave.store.migrate import upgrade
from dialwave.store.repositories.leads import _LEAD_CLAIM_COLUMNS, _claimed, claim_due, next_due_at
from dialwave.store.repositories.sql import sqlite_time
from dialwave.store.tables import leads
from tests.random_leads import insert_leads, random_leads, sqlite_database, two_campaigns

TIMES = [datetime(2026, 3, 2, 13 + h, m, tzinfo=UTC) for h in range(3) for m in (0, 30)]
STATUSES = ["queued", "retry_pending", "dialing", "completed"]


def _before(now: datetime, limit: int) -> sa.Select[Any]:
    """The statement claim_due ran on SQLite before (the leads, their fields and the order to keep)."""
    return (
        sa.select(*_LEAD_CLAIM_COLUMNS)
        .where(leads.c.campaign_id == "cmp_a", leads.c.status.in_(ls.DUE), leads.c.next_attempt_at <= now)
        .order_by(leads.c.next_attempt_at)
        .limit(limit)
    )


async def _compare(url: str, seed: int, inline: bool) -> None:
    rng = random.Random(seed)
    db = Database(url, inline_sqlite=inline, throwaway=inline)
    try:
        async with db.write() as conn:
            await two_campaigns(conn)
            rows = random_leads(
                rng,
                rng.randint(1, 300),
                statuses=STATUSES,
                times=TIMES,
                untimed=0.05,
                variables=["{}", '{"name": "Ada", "n": 3}'],
                overrides=[None, '{"system_prompt": "x"}'],
                retries=[None, '{"busy": 1}'],
            )
            await insert_leads(conn, rows)
            for _ in range(rng.randint(0, 80)):  # leads move between statuses and times, as claims and ends move them
                row = rng.choice(rows)
                await conn.exec_driver_sql(
                    "UPDATE leads SET status = ?, next_attempt_at = ? WHERE id = ?",
                    (rng.choice(STATUSES[:3]), sqlite_time(rng.choice(TIMES)), row["id"]),
                )
        now, limit = rng.choice(TIMES), rng.randint(1, 200)
        async with db.write() as conn:
            assert (inline_sqlite(conn) is not None) is inline
            expected = [_claimed(row) for row in (await conn.execute(_before(now, limit))).mappings()]
            got = await claim_due(conn, "cmp_a", now, limit)
            first = await conn.scalar(
                sa.select(leads.c.next_attempt_at)
                .where(leads.c.campaign_id == "cmp_a", leads.c.status.in_(ls.DUE))
                .order_by(leads.c.next_attempt_at)
                .limit(1)
            )
            assert await next_due_at(conn, "cmp_a") == first
        assert got == expected
    finally:
        await db.dispose()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32), inline=st.booleans())
def test_the_merged_ranges_claim_what_the_one_statement_claimed(
    tmp_path_factory: object, seed: int, inline: bool
) -> None:
    url = _database()
    asyncio.run(_compare(url, seed, inline))


def _database() -> str:
    return sqlite_database("claim-order", upgrade)
