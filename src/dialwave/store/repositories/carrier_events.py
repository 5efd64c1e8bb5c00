"""Carrier webhooks handed between processes (PostgreSQL): an API process that verified a webhook for a
call it does not hold stores it and notifies the channel `CHANNEL` in the same transaction (the
notification goes out at commit); the engine holding the call LISTENs, and takes the events of its
calls (deleted as they are read, so each is applied once). A row of kind `RESULT` says the agent
runtime's result of a call still up changed (the result itself is in call_results)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import carrier_events

CHANNEL = "dialwave_carrier_events"
RESULT = "result"  # the `provider` of a runtime result's notice (no carrier is named so)


async def add_event(conn: AsyncConnection, provider: str, call_id: str, payload: Any, now: datetime) -> None:
    await conn.execute(
        carrier_events.insert().values(call_id=call_id, provider=provider, payload=payload, created_at=now)
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, call_id)))


def _of(call_ids: Sequence[str], results: bool) -> sa.ColumnElement[bool]:
    kind = carrier_events.c.provider == RESULT if results else carrier_events.c.provider != RESULT
    return sa.and_(carrier_events.c.call_id.in_(list(call_ids)), kind)


async def any_events(conn: AsyncConnection, carried: Sequence[str], resulted: Sequence[str]) -> bool:
    """Some carrier event of the calls `carried`, or result notice of the calls `resulted`, is stored
    (a read: an engine asks this at each poll before it takes anything)."""
    if not carried and not resulted:
        return False
    found = sa.select(carrier_events.c.id).where(sa.or_(_of(carried, False), _of(resulted, True))).limit(1)
    return (await conn.execute(found)).first() is not None


async def take_events(conn: AsyncConnection, call_ids: Sequence[str], *, results: bool = False) -> list[RowMapping]:
    """The stored carrier events (`results`: result notices) of these calls, oldest first, deleted (rows
    another transaction is taking are skipped: they are that one's)."""
    if not call_ids:
        return []
    mine = sa.select(carrier_events.c.id).where(_of(call_ids, results))
    if conn.dialect.name == "postgresql":
        mine = mine.with_for_update(skip_locked=True)
    result = await conn.execute(
        carrier_events.delete().where(carrier_events.c.id.in_(mine.scalar_subquery())).returning(*carrier_events.c)
    )
    return sorted(result.mappings().all(), key=lambda r: r["id"])


async def delete_older(conn: AsyncConnection, before: datetime) -> int:
    """Events no engine took (their call had ended, or was never held): dropped after a while."""
    result = await conn.execute(carrier_events.delete().where(carrier_events.c.created_at < before))
    return int(result.rowcount or 0)


async def listen(conn: AsyncConnection, on_notify: Callable[[str], None]) -> None:
    """LISTEN on `CHANNEL` on this (dedicated, PostgreSQL) connection: `on_notify(call_id)` for each
    notification, on the connection's event loop."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: on_notify(str(payload)))
