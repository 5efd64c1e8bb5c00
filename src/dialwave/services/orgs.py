"""Organizations, as the operator's CLI changes them: the concurrency cap, the API rate limit and Twilio
credentials."""

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


async def set_rate_limit(db: Database, org_name: str, per_second: float | None) -> bool:
    """Requests a second per API key (None: the server's default; 0: none). False: no such organization."""
    async with db.write() as conn:
        return await repo.set_rate_limit(conn, org_name, per_second)
