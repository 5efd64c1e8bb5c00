"""Run Alembic migrations programmatically (used by `dialwave migrate`, `make run`, tests)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from dialwave.store.db import Database, async_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head() -> str:
    """The newest migration this code knows."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return str(script.get_current_head())


async def current(db: Database) -> str | None:
    """The migration the database is at (None: never migrated)."""
    async with db.read() as conn:
        tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        if "alembic_version" not in tables:
            return None
        version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        return None if version is None else str(version)
