"""Is this process able to serve: alive (it answers), and ready (its database answers and is at the
schema this code needs)."""

from __future__ import annotations

from dialwave.store.db import Database, unreachable
from dialwave.store.migrate import current, head


async def readiness(db: Database) -> list[str]:
    """What keeps this process from serving requests; empty when it is ready."""
    try:
        at = await current(db)
    except Exception as exc:
        if not unreachable(exc):
            raise
        return [f"the database does not answer ({type(exc).__name__})"]
    wanted = head()
    if at != wanted:
        return [f"the database is at migration {at or 'none'}, this code needs {wanted}: run `dialwave migrate`"]
    return []
