"""Call results: what the agent runtime reported."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.tables import call_results


async def get_result(conn: AsyncConnection, call_id: str) -> RowMapping | None:
    return (await conn.execute(sa.select(call_results).where(call_results.c.call_id == call_id))).mappings().first()


async def save_result(conn: AsyncConnection, values: dict[str, Any], exists: bool) -> None:
    if exists:
        call_id = values["call_id"]
        changes = {k: v for k, v in values.items() if k not in ("call_id", "created_at")}
        await conn.execute(call_results.update().where(call_results.c.call_id == call_id).values(**changes))
    else:
        await conn.execute(call_results.insert().values(**values))


async def results_of(conn: AsyncConnection, call_ids: list[str]) -> list[RowMapping]:
    """The stored results of these calls: call_id, conversion, callback_at."""
    cols = (call_results.c.call_id, call_results.c.conversion, call_results.c.callback_at)
    stmt = sa.select(*cols).where(call_results.c.call_id.in_(call_ids)).order_by(call_results.c.call_id)
    return list((await conn.execute(stmt)).mappings().all())


async def deciding_results(conn: AsyncConnection, call_ids: list[str]) -> list[RowMapping]:
    """The stored results of these calls that change what follows a call: conversion false or a callback."""
    stmt = sa.select(call_results).where(
        call_results.c.call_id.in_(call_ids),
        call_results.c.opted_out.is_(False),
        sa.or_(call_results.c.conversion.is_(False), call_results.c.callback_at.is_not(None)),
    )
    return list((await conn.execute(stmt)).mappings().all())


async def recent_summaries(conn: AsyncConnection, org_id: str, number: str, except_call: str, limit: int) -> list[str]:
    """The latest summaries of earlier calls to this number in the organization, newest first."""
    stmt = (
        sa.select(call_results.c.summary)
        .where(
            call_results.c.organization_id == org_id,
            call_results.c.to_number == number,
            call_results.c.call_id != except_call,
            call_results.c.summary.is_not(None),
        )
        .order_by(call_results.c.created_at.desc())
        .limit(limit)
    )
    return [str(s) for s in (await conn.execute(stmt)).scalars().all()]
