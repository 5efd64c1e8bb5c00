"""Running the `dialwave` commands' work on the configured database (DIALWAVE_DATABASE_URL).

The database side (config, services, store) is imported when a command uses it: the API commands
(cli_http) start without it, in half the time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import typer

from dialwave.errors import DatabaseNotReady

if TYPE_CHECKING:
    from dialwave.store.db import Database

T = TypeVar("T")


async def schema_is_current(db: Database) -> None:
    from dialwave.store.migrate import current, head

    at, wanted = await current(db), head()
    if at != wanted:
        where = "never migrated" if at is None else f"at migration {at}, this code needs {wanted}"
        raise DatabaseNotReady(f"the database is {where}")


async def on_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run a service call on the configured database."""
    from dialwave.config import get_settings
    from dialwave.store.db import Database

    db = Database(get_settings().database_url)
    try:
        return await work(db)
    finally:
        await db.dispose()


def done(work: Callable[[Database], Awaitable[bool]], failure: str, hint: str) -> None:
    """Run `work` on the configured database; exit 2 with `failure` and `hint` if it returns False."""
    if not asyncio.run(on_database(work)):
        typer.echo(f"error: {failure}\nhint: {hint}", err=True)
        raise typer.Exit(2)


async def create_key(org: str, scopes: list[str], name: str | None) -> dict[str, object]:
    from dialwave.services import auth

    created = await on_database(lambda db: auth.create_key(db, org, scopes, datetime.now(UTC), name))
    return {
        "key": created.key,
        "key_id": created.key_id,
        "organization_id": created.organization_id,
        "organization": org,
        "scopes": created.scopes,
    }
