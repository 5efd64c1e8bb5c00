"""SQL helpers every repository shares: batched IN lists, insert-or-skip, per-row updates in one
statement per set of columns, and SQLite's time format."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.types import UTCDateTime

IN_CHUNK = 900  # stays under SQLite's bound-parameter limit


async def insert_ignore(
    conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]], key: sa.Column[Any] | None = None
) -> list[Any]:
    """Insert rows, skipping those that hit a unique key; returns the `key` (default: the first primary
    key column) of each inserted row.

    Counted with RETURNING: asyncpg's executemany reports no row count, so a count from rowcount
    would take skipped rows for inserted ones."""
    if not rows:
        return []
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    key = key if key is not None else next(iter(table.primary_key.columns))
    stmt = dialect_insert(table).on_conflict_do_nothing().returning(key)
    result = await conn.execute(stmt, rows)
    return list(result.scalars().all())


def one_of(conn: AsyncConnection, column: sa.Column[str], values: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    """`column IN values`, as few statements as possible: PostgreSQL takes one array parameter (a long
    IN list of parameters gets a poor generic plan there); SQLite takes chunks under its parameter limit."""
    if conn.dialect.name == "postgresql":
        return [column == sa.any_(sa.bindparam("values", list(values), type_=postgresql.ARRAY(sa.String)))]
    return [column.in_(values[i : i + IN_CHUNK]) for i in range(0, len(values), IN_CHUNK)]


def sqlite_time(value: datetime) -> str:
    """The storage format SQLAlchemy's SQLite DateTime reads back (UTC, naive)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def latest_per_number(
    conn: AsyncConnection, number: sa.Column[str], at: sa.Column[datetime], numbers: Sequence[str], *where: Any
) -> dict[str, datetime]:
    """The latest `at` per number among rows matching `where`."""
    found: dict[str, datetime] = {}
    for condition in one_of(conn, number, numbers):
        latest = sa.func.max(at, type_=UTCDateTime())
        stmt = sa.select(number, latest).where(condition, *where).group_by(number)
        found.update({n: t for n, t in await conn.execute(stmt) if t is not None})
    return found


def _grouped(rows: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in rows.items():
        key = tuple(sorted(values))
        groups.setdefault(key, []).append({"_id": row_id, **{f"v_{k}": v for k, v in values.items()}})
    return groups


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite types would bind it (UTC text times, JSON text, 0/1)."""
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


async def update_many(conn: AsyncConnection, table: sa.Table, rows: dict[str, dict[str, Any]]) -> None:
    """UPDATE table SET ... WHERE id = ..., one executemany per set of columns. On SQLite the rows go
    to the driver as plain tuples: SQLAlchemy's per-row parameter processing costs more than the update."""
    for columns, params in _grouped(rows).items():
        if conn.dialect.name == "sqlite":
            sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
            tuples = [(*(_sqlite_value(p[f"v_{c}"]) for c in columns), p["_id"]) for p in params]
            await conn.exec_driver_sql(sql, tuples)
            continue
        stmt = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
        )
        await conn.execute(stmt, params)


def equal_to(stmt: sa.Select[Any], table: sa.Table, filters: Mapping[str, Any]) -> sa.Select[Any]:
    """`stmt` narrowed to the rows whose columns equal the given values (a list's filters)."""
    for column, value in filters.items():
        stmt = stmt.where(table.c[column] == value)
    return stmt
