"""Which campaigns this dispatcher owns. On PostgreSQL several `serve` processes share the database:
each campaign is dispatched by one of them at a time, through a session advisory lock held on a
dedicated connection. When a worker dies its connection closes, the lock goes with it, and another
worker takes the campaign over at its next refresh (and reconciles the calls left in flight).
SQLite has one worker, which owns every campaign."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.db import Database
from dialwave.store.repositories import leases as repo
from dialwave.store.repositories import slots as slot_repo


class Leases:
    def __init__(self, db: Database, worker_key: int | None = None) -> None:
        self.db = db
        self.worker_key = worker_key  # held as a session lock while this worker lives (engine/slots.py)
        self.owned: set[str] = set()
        self._conn: AsyncConnection | None = None
        self.frozen = False

    async def acquire(self, campaign_ids: Iterable[str]) -> set[str]:
        """Try to own each campaign not owned yet; returns the ones newly owned. A worker with a
        liveness key takes no more than its fair share (running campaigns / live workers, rounded up),
        so that workers started together split the campaigns; when one dies, the share grows and the
        others take its campaigns over."""
        if self.frozen:  # stopping: no campaign is taken any more
            return set()
        running = list(campaign_ids)
        wanted = [c for c in running if c not in self.owned]
        if self.db.dialect != "postgresql":
            self.owned.update(wanted)
            return set(wanted)
        # A worker counts as live from its first refresh, campaigns or not: workers started together
        # and idle then split the campaigns started later (else the first to see them took them all).
        if (wanted or self.worker_key is not None) and self._conn is None:
            self._conn = await self.db.writer.connect()
            await self._conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.worker_key is not None:
                await slot_repo.hold_worker_key(self._conn, self.worker_key)
        room = len(wanted)
        if wanted and self.worker_key is not None:
            assert self._conn is not None
            workers = max(1, await slot_repo.live_workers(self._conn))
            room = -(-len(running) // workers) - len(self.owned)
        new: set[str] = set()
        for campaign_id in wanted:
            if len(new) >= room:
                break
            assert self._conn is not None
            if await repo.try_lease(self._conn, campaign_id):
                new.add(campaign_id)
        self.owned |= new
        return new

    async def release(self, campaign_ids: Iterable[str]) -> None:
        for campaign_id in list(campaign_ids):
            if campaign_id in self.owned and self._conn is not None:
                await repo.release_lease(self._conn, campaign_id)
            self.owned.discard(campaign_id)

    async def close(self) -> None:
        """Give up every lease: the session is ended (not returned to the pool, which would keep its
        advisory locks), as a worker's death would end it."""
        self.owned.clear()
        if self._conn is not None:
            await self._conn.invalidate()
            await self._conn.close()
            self._conn = None
