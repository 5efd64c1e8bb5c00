"""Which campaigns this dispatcher owns. On PostgreSQL several `serve` processes share the database:
each campaign is dispatched by one of them at a time, through a session advisory lock held on a
dedicated connection. When a worker dies its connection closes, the lock goes with it, and another
worker takes the campaign over at its next refresh (and reconciles the calls left in flight).
SQLite has one worker, which owns every campaign.

A session also ends when PostgreSQL restarts (or fails over, or the network cuts it), and every
worker loses its locks at once while it goes on living. A worker notices it at its next refresh (the
lease session is pinged) or at the first failed transaction, and once the database is back it opens a
new session, takes its liveness key again and re-locks the campaigns it owned, before it writes
anything else. A campaign some other worker locked meanwhile is lost: the dispatcher forgets it
(`lost`), as a dead worker's, and the new owner reconciles its calls. So that workers coming back
together take back their own campaigns rather than each other's, a worker whose session was renewed
takes no new campaign for `REJOIN_GRACE` seconds (a worker that died meanwhile is taken over after
that)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.db import Database
from dialwave.store.repositories import leases as repo
from dialwave.store.repositories import slots as slot_repo

log = structlog.get_logger("dialwave.engine")
REJOIN_GRACE = 5.0  # seconds (real time) after a renewed session in which no new campaign is taken


class Leases:
    def __init__(self, db: Database, worker_key: int | None = None) -> None:
        self.db = db
        self.worker_key = worker_key  # held as a session lock while this worker lives (engine/slots.py)
        self.owned: set[str] = set()
        self._conn: AsyncConnection | None = None
        self.frozen = False
        self.suspect = False  # a transaction failed with the database away: check the session first
        self.broken = False  # the lease session is gone: renew it before anything else
        self.lost: set[str] = set()  # campaigns owned before the session ended, locked by another worker since
        self.rejoined_at: float | None = None  # time.monotonic() of the last renewed session

    async def verify(self) -> None:
        """Check the lease session (PostgreSQL); if it is gone, open a new one, take the liveness key
        again and re-lock every campaign owned. The campaigns lost (now another worker's) are no longer
        owned: they go to `lost`, for the dispatcher. Raises while the database is away (and stays
        `broken`)."""
        if self.db.dialect != "postgresql":
            return
        if self._conn is not None:
            try:
                await self._conn.execute(sa.text("SELECT 1"))
            except Exception:
                log.warning("the lease session is gone: renewing it", campaigns_owned=len(self.owned))
                await self._drop_session()
                self.broken = True
        if self.broken:
            await self._open_session()
            assert self._conn is not None
            kept = {c for c in sorted(self.owned) if await repo.try_lease(self._conn, c)}
            self.lost |= self.owned - kept
            self.owned = kept
            self.rejoined_at = time.monotonic()
            self.broken = False
            log.info("lease session renewed", campaigns_kept=len(kept), campaigns_lost=len(self.lost))
        self.suspect = False

    def take_lost(self) -> set[str]:
        lost, self.lost = self.lost, set()
        return lost

    async def _open_session(self) -> None:
        conn = await self.db.writer.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.worker_key is not None:
                await slot_repo.hold_worker_key(conn, self.worker_key)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            raise
        self._conn = conn

    async def _drop_session(self) -> None:
        """Discard the lease connection (never returned to the pool: its locks, if any, must go)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def acquire(self, campaign_ids: Iterable[str]) -> set[str]:
        """Try to own each campaign not owned yet; returns the ones newly owned. A worker with a
        liveness key takes no more than its fair share (running campaigns / live workers, rounded up),
        so that workers started together split the campaigns; when one dies, the share grows and the
        others take its campaigns over."""
        if self.frozen:  # stopping: no campaign is taken any more
            return set()
        running = list(campaign_ids)
        if self.db.dialect != "postgresql":
            wanted = [c for c in running if c not in self.owned]
            self.owned.update(wanted)
            return set(wanted)
        await self.verify()  # the session is alive (or renewed, its campaigns re-locked) before anything else
        wanted = [c for c in running if c not in self.owned]
        # A worker counts as live from its first refresh, campaigns or not: workers started together
        # and idle then split the campaigns started later (else the first to see them took them all).
        if (wanted or self.worker_key is not None) and self._conn is None:
            await self._open_session()
        room = len(wanted)
        if self.rejoined_at is not None and time.monotonic() < self.rejoined_at + REJOIN_GRACE:
            room = 0  # the others renew their sessions too: their campaigns are theirs
        elif wanted and self.worker_key is not None:
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
        await self._drop_session()
