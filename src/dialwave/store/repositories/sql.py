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

from dialwave.store.db import inline_sqlite
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
    """The storage format SQLAlchemy's SQLite DateTime reads back (UTC, naive): "%Y-%m-%d %H:%M:%S.%f".
    isoformat with microseconds writes the same text (years 1000-9999) at a fraction of strftime's cost,
    and the engine writes the same instant many times in a row (a batch's `now`)."""
    global _last_time
    last = _last_time  # one tuple, replaced whole: safe if threads share it
    if value is last[0]:
        return last[1]
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_time = (value, text)
    return text


_last_time: tuple[datetime | None, str] = (None, "")


async def driver_rows(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """A statement in the driver's own SQL and parameters (SQLite), straight on the inline connection
    when there is one (see store.db.inline_sqlite)."""
    raw = inline_sqlite(conn)
    if raw is not None:
        return raw.execute(sql, params).fetchall()
    result = await conn.exec_driver_sql(sql, tuple(params))
    return list(result) if result.returns_rows else []


async def driver_many(conn: AsyncConnection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """An executemany in the driver's own SQL (SQLite), straight on the inline connection when there is one."""
    raw = inline_sqlite(conn)
    if raw is not None:
        raw.executemany(sql, rows)
    else:
        await conn.exec_driver_sql(sql, rows)


def from_sqlite_time(text: str | None) -> datetime | None:
    """A time column read with the driver alone, as UTCDateTime reads it (aware, UTC). The same text
    read again in a row gives the same (immutable) instant without parsing it again: a campaign's
    imported leads all come due at the instant of their import (a forecast reads 50,000 of them)."""
    global _last_read
    if text is None:
        return None
    last = _last_read  # one tuple, replaced whole: safe if threads share it
    if text == last[0]:
        return last[1]
    value = datetime.fromisoformat(text).replace(tzinfo=UTC)
    _last_read = (text, value)
    return value


_last_read: tuple[str | None, datetime | None] = (None, None)


def from_sqlite_json(text: str | None) -> Any:
    """A JSON column read with the driver alone, as SQLAlchemy's JSON type reads it."""
    return None if text is None else json.loads(text)


async def sqlite_insert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT rows (no Python-side defaults to apply), one executemany per set of columns, as driver tuples."""
    groups: dict[frozenset[str], tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    convert = _CONVERT.get
    for row in rows:
        key = frozenset(row)
        group = groups.get(key)
        if group is None:
            group = groups[key] = (tuple(row), [])
        out = []
        for column in group[0]:  # converted by type, without a call per plain value (see _sqlite_tuples)
            value = row[column]
            kind = type(value)
            if kind not in _PLAIN:
                f = convert(kind)
                value = f(value) if f is not None else _sqlite_value(value)
            out.append(value)
        group[1].append(tuple(out))
    for columns, tuples in groups.values():
        marks = ", ".join("?" for _ in columns)
        await driver_many(conn, f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", tuples)


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


_PLAIN = (str, int, float, type(None))


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite types would bind it (UTC text times, JSON text, 0/1)."""
    if type(value) in _PLAIN:  # the most frequent, first (bool is not int here: its type is bool)
        return value
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


_CONVERT: dict[type, Any] = {datetime: sqlite_time, dict: json.dumps, list: json.dumps, bool: int}


def _sqlite_tuples(rows: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
    """Rows grouped by their columns (in the order each row names them), as driver tuples (values,
    then the id). The engine's every group commit: values converted by type, without a call per value
    for the plain ones."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    convert = _CONVERT.get
    for row_id, values in rows.items():
        out = []
        for value in values.values():
            kind = type(value)
            if kind not in _PLAIN:
                f = convert(kind)
                value = f(value) if f is not None else _sqlite_value(value)
            out.append(value)
        out.append(row_id)
        key = tuple(values)
        group = groups.get(key)
        if group is None:
            groups[key] = [tuple(out)]
        else:
            group.append(tuple(out))
    return groups


async def update_many(conn: AsyncConnection, table: sa.Table, rows: dict[str, dict[str, Any]]) -> None:
    """UPDATE table SET ... WHERE id = ..., one executemany per set of columns. On SQLite the rows go
    to the driver as plain tuples: SQLAlchemy's per-row parameter processing costs more than the update."""
    if conn.dialect.name == "sqlite":
        for columns, tuples in _sqlite_tuples(rows).items():
            sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
            await driver_many(conn, sql, tuples)
        return
    for columns, params in _grouped(rows).items():
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
