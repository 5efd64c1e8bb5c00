"""The thread-less SQLite connection used by `dialwave simulate` behaves like aiosqlite's."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dialwave.store.db import Database, inline_sqlite, savepoint
from dialwave.store.migrate import upgrade
from dialwave.store.repositories.sql import driver_many, driver_rows
from dialwave.store.tables import organizations
from tests.conftest import T0


async def test_commit_rollback_and_errors_without_a_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inline.db'}"
    upgrade(url)
    db = Database(url, inline_sqlite=True)
    try:
        async with db.write() as conn:
            await conn.execute(organizations.insert().values(id="org_1", name="a", created_at=T0))
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await conn.execute(organizations.insert().values(id="org_2", name="b", created_at=T0))
                await conn.execute(organizations.insert().values(id="org_3", name="a", created_at=T0))  # same name
        async with db.read() as conn:
            names = (await conn.scalars(sa.select(organizations.c.name).order_by(organizations.c.name))).all()
            mode = await conn.scalar(sa.text("PRAGMA journal_mode"))
        assert names == ["a"]  # the failed transaction left nothing behind
        assert mode == "wal"
    finally:
        await db.dispose()


@pytest.mark.parametrize("inline", [True, False])
async def test_a_savepoint_rolls_back_alone_and_statements_run_on_the_inline_connection(
    tmp_path: Path, inline: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'nested.db'}"
    upgrade(url)
    db = Database(url, inline_sqlite=inline, throwaway=inline)
    try:
        async with db.write() as conn:
            assert (inline_sqlite(conn) is not None) is inline
            await conn.execute(organizations.insert().values(id="org_1", name="a", created_at=T0))
            with pytest.raises(RuntimeError):
                async with savepoint(conn):
                    await driver_rows(
                        conn, "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)", ("org_2", "b", "x")
                    )
                    raise RuntimeError("this claim failed")
            async with savepoint(conn):
                await driver_many(
                    conn, "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)", [("org_3", "c", "x")]
                )
        async with db.read() as conn:
            names = (await conn.scalars(sa.select(organizations.c.name).order_by(organizations.c.name))).all()
            synchronous = await conn.scalar(sa.text("PRAGMA synchronous"))
        assert names == ["a", "c"]  # the failed savepoint alone was rolled back
        assert synchronous == (0 if inline else 1)  # a throwaway database: OFF; else NORMAL
    finally:
        await db.dispose()
