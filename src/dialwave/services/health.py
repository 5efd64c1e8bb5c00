"""Is this process able to serve: its database answers."""

from __future__ import annotations

from dialwave.store.db import Database


async def check(db: Database) -> None:
    """Raises when the database does not answer."""
    async with db.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
