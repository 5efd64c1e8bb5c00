"""Cursor pagination over time-ordered prefixed ids."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.errors import field_error


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise field_error("cursor", "is not a cursor returned by this list") from exc
    if not value or len(value) > 64:
        raise field_error("cursor", "is not a cursor returned by this list")
    return value


async def page(
    conn: AsyncConnection, stmt: sa.Select[Any], id_col: sa.ColumnElement[str], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    if cursor:
        stmt = stmt.where(id_col > decode_cursor(cursor))
    rows = (await conn.execute(stmt.order_by(id_col).limit(limit + 1))).mappings().all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["id"])
    return rows, None
