"""Run Alembic migrations programmatically (used by `dialwave migrate`, `make run`, tests). Alembic is
imported by the functions that run it: the API imports this module for its readiness check
(`current`, `head`), and a process that never migrates (`dialwave simulate`, whose throwaway database
is made by store.schema) does not load it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from dialwave.store.db import Database, async_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic announces each of its plugins at INFO when first imported ("setup plugin ..."): a process
# that configured its logging first (`dialwave serve`, `dialwave worker`) would print them all.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head() -> str:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

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
