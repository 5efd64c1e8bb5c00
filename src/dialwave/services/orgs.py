"""Organizations, as the operator's CLI changes them: the concurrency cap and Twilio credentials."""

from __future__ import annotations

from dialwave.store.db import Database
from dialwave.store.repositories import orgs as repo


async def set_max_concurrency(db: Database, org_name: str, value: int | None) -> bool:
    """Calls in flight across all the organization's campaigns (None: no cap). False: no such organization."""
    async with db.write() as conn:
        return await repo.set_max_concurrency(conn, org_name, value)


async def set_twilio(db: Database, org_name: str, twilio: dict[str, str] | None) -> bool:
    """Organization-wide Twilio credentials (None removes them). False: no such organization."""
    async with db.write() as conn:
        return await repo.set_twilio(conn, org_name, twilio)
