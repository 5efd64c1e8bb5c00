"""Carrier webhooks that another process received for calls this engine holds (PostgreSQL, several
processes: services/carrier_events.py). The relay LISTENs on a dedicated connection; a notification,
or its poll every `poll_every` seconds (a notification missed while the connection was away is only a
delay), takes the stored events of the calls this engine's carriers hold, applies them to those
carriers as the webhook route would have, and wakes the engine. Events no engine took are dropped
after `keep`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.services import carrier_events as service
from dialwave.store.db import Database
from dialwave.store.repositories import carrier_events as repo
from dialwave.telephony.base import Carrier, PushedEvents

log = structlog.get_logger("dialwave.engine.carrier_relay")


class CarrierRelay:
    def __init__(
        self,
        db: Database,
        carriers: Mapping[str, Carrier],
        wake: Callable[[], None],
        now: Callable[[], datetime],
        *,
        poll_every: float = 1.0,
        keep: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.carriers = carriers
        self.wake = wake
        self.now = now  # the engine's clock (the API stamps events with it too)
        self.poll_every = poll_every
        self.keep = keep
        self.notified = asyncio.Event()
        self._conn: AsyncConnection | None = None
        self._swept_at: datetime | None = None

    def held(self) -> dict[str, str]:
        """call id -> provider, for the calls this engine's relayed carriers hold now."""
        out: dict[str, str] = {}
        for name in service.RELAYED:
            carrier = self.carriers.get(name)
            if isinstance(carrier, PushedEvents):
                out.update(dict.fromkeys(carrier.tracks, name))
        return out

    async def once(self) -> int:
        """Take and apply the stored events of the calls held now: the call events they added."""
        held = self.held()
        if not held:
            return 0
        added = 0
        for row in await service.take(self.db, list(held)):
            carrier = self.carriers.get(row["provider"])
            if carrier is not None:
                added += await service.apply(carrier, row["provider"], row["call_id"], row["payload"])
        if added:
            self.wake()
        return added

    async def run(self) -> None:
        while True:
            try:
                await self._listening()
                await self.once()
                await self._sweep()
            except Exception as exc:  # the database away: the next round tries again
                log.warning("carrier events not taken", error=type(exc).__name__)
                await self._drop_connection()
            with contextlib.suppress(TimeoutError):  # a notification during `once` returns at once
                await asyncio.wait_for(self.notified.wait(), self.poll_every)
            self.notified.clear()

    async def _listening(self) -> None:
        if self._conn is not None and not self._conn.closed:
            raw = await self._conn.get_raw_connection()
            if raw.driver_connection is not None and not raw.driver_connection.is_closed():
                return
            await self._drop_connection()
        self._conn = await self.db.writer.connect()
        await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        await repo.listen(self._conn, lambda _call_id: self.notified.set())

    async def _sweep(self) -> None:
        now = self.now()
        if self._swept_at is None or now - self._swept_at > timedelta(minutes=1):
            self._swept_at = now
            await service.drop_older(self.db, now - self.keep)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()

    async def close(self) -> None:
        await self._drop_connection()
