"""A forecast's in-memory store reads the campaign's open leads once, by the driver and by position
(leads.open_leads_sqlite): the same leads, the same fields and the same rowids as the rows read
through SQLAlchemy's types and made into leads by `_claimed`, as every claim makes them."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.domain import lead_states as ls
from dialwave.store.db import Database
from dialwave.store.repositories.leads import _LEAD_CLAIM_COLUMNS, _claimed, open_leads_sqlite
from dialwave.store.schema import create_throwaway_schema
from dialwave.store.tables import leads
from tests.random_leads import insert_leads, random_leads, sqlite_database, two_campaigns

TIMES = [datetime(2026, 3, 2, 13, 0, tzinfo=UTC), datetime(2026, 3, 2, 13, 0, 0, 250, tzinfo=UTC)]
STATUSES = ["queued", "retry_pending", "dialing", "in_call", "completed", "failed", "skipped", "cancelled"]


async def _compare(url: str, seed: int) -> None:
    rng = random.Random(seed)
    db = Database(url, inline_sqlite=True, throwaway=True)
    try:
        async with db.write() as conn:
            await two_campaigns(conn)
            rows = random_leads(
                rng,
                rng.randint(0, 200),
                statuses=STATUSES,
                times=TIMES,
                untimed=0.1,
                variables=["{}", "null", '{"name": "Ada", "n": 3, "nested": {"a": [1, 2]}}'],
                overrides=[None, "null", '{"system_prompt": "x"}'],
                retries=[None, "null", "{}", '{"busy": 1, "no_answer": 2}'],
                attempts=True,
            )
            await insert_leads(conn, rows)
        async with db.read() as conn:
            stmt = sa.select(leads.c.organization_id, sa.literal_column("rowid"), *_LEAD_CLAIM_COLUMNS).where(
                leads.c.campaign_id == "cmp_a", leads.c.status.not_in(ls.FINAL)
            )
            read = (await conn.execute(stmt)).mappings()
            expected = {r["id"]: (r["organization_id"], r["rowid"], _claimed(r)) for r in read}
            got = await open_leads_sqlite(conn, "cmp_a")
        assert {lead.id: (org, rowid, lead) for org, rowid, lead in got} == expected
        assert len(got) == len(expected)
    finally:
        await db.dispose()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_open_leads_read_by_position_are_the_leads_claimed_from_rows(seed: int) -> None:
    asyncio.run(_compare(_database(), seed))


def _database() -> str:
    return sqlite_database("open-leads", create_throwaway_schema)
