"""Carrier webhooks that another process received for calls this engine holds (PostgreSQL, several
processes: services/carrier_events.py). The relay LISTENs on a dedicated connection; a notification,
or its poll every `poll_every` seconds (a notification missed while the connection was away is only a
delay), takes the stored events of the calls this engine's carriers hold, applies them to those
carriers as the webhook route would have, and wakes the engine. Events no engine took are dropped
after `keep`.

The same relay brings the agent runtime's results posted to another process while a call is up (a
notice per post, the result read from call_results): it applies them to the calls this engine holds
as its own API would have (Calls.note_result), before their end decides. On SQLite (one engine, API-only
processes beside it) it only polls, and only those notices are ever stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.services import carrier_events as service
from dialwave.store.db import Database
from dialwave.store.repositories import carrier_events as repo
from dialwave.telephony.base import Carrier, PushedEvents

if TYPE_CHECKING:
    from dialwave.engine.calls import Calls

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
        calls: Calls | None = None,
    ) -> None:
        self.db = db
        self.carriers = carriers
        self.calls = calls  # the engine's calls in flight: results posted elsewhere are noted on them
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
        """Take and apply the stored events and results of the calls held now: the call events they
        added, plus the results noted."""
        held = self.held()
        live = list(self.calls.live) if self.calls is not None else []
        if not (held or live) or not await service.pending(self.db, list(held), live):
            return 0
        noted = 0
        if self.calls is not None and live:  # before the events: an end taken with them decides with it
            for row in await service.take_results(self.db, live):
                noted += self.calls.note_result(row["call_id"], row["conversion"], row["callback_at"])
        added = 0
        if held:
            for row in await service.take(self.db, list(held)):
                carrier = self.carriers.get(row["provider"])
                if carrier is not None:
                    added += await service.apply(carrier, row["provider"], row["call_id"], row["payload"])
        if added:
            self.wake()
        return added + noted

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
        if self.db.dialect != "postgresql":  # no NOTIFY: the poll alone
            return
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
