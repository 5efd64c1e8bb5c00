"""A forecast's store answers the claim's do-not-call look-up from the list it read once, as the
statement does: a number the engine lists (put_on_dnc) counts at once, and after `forget` (the
engine's refresh, which an API change to the list signals) the list is read again. A forecast's
database is SQLite; the store reads the list through the repository, so both backends run it."""

from __future__ import annotations

import pytest

from dialwave.engine.storage import SQL, MemoryStore
from dialwave.store.db import Database
from dialwave.store.repositories import dnc as dnc_repo
from dialwave.store.repositories.orgs import get_or_create_org
from tests.conftest import T0

pytestmark = pytest.mark.asyncio
NUMBERS = ["+12125550001", "+12125550002", "+12125550003", "+12125550004"]


async def test_the_list_held_answers_as_the_statement(db: Database) -> None:
    store = MemoryStore()
    async with db.write() as conn:
        org = await get_or_create_org(conn, "dnc-held", T0)
        await dnc_repo.dnc_add(conn, org, [NUMBERS[0]], "asked", "api", T0)

        async def both() -> tuple[set[str], set[str]]:
            return await store.dnc_contains(conn, org, NUMBERS), await SQL.dnc_contains(conn, org, NUMBERS)

        assert await both() == ({NUMBERS[0]}, {NUMBERS[0]})
        added, _ = await store.put_on_dnc(conn, org, NUMBERS[1], "opted out", "call_result", T0)
        assert added and await both() == ({NUMBERS[0], NUMBERS[1]}, {NUMBERS[0], NUMBERS[1]})
        await dnc_repo.dnc_add(conn, org, [NUMBERS[2]], "asked", "api", T0)  # the API's: the engine is signalled
        store.forget("cmp_any")  # ... and its refresh forgets what it holds
        assert await both() == (set(NUMBERS[:3]), set(NUMBERS[:3]))
        assert await store.dnc_contains(conn, "org_other", NUMBERS) == set()
