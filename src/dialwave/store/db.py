"""The database handle: engines, and the transaction scopes that requests and workers own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

CONNECT_SECONDS = 5  # a PostgreSQL that does not answer fails a request after this, not after a minute
POOL_WAIT_SECONDS = 10  # waiting for a free pooled connection
THROWAWAY_JOURNAL = "WAL"
THROWAWAY_CACHE_KIB = 262_144  # a throwaway database's page cache, per connection (SQLite's default: 2 MiB)
_AWAY = ("CannotConnectNowError", "ConnectionDoesNotExistError", "ConnectionFailureError", "AdminShutdownError")


def unreachable(exc: BaseException) -> bool:
    """Is this the database being away (refused, reset, timed out, restarting), not a bad query?"""
    seen: BaseException | None = exc
    for _ in range(4):  # the driver's error is wrapped by SQLAlchemy, sometimes twice
        if seen is None:
            return False
        if isinstance(seen, OSError | sa_exc.TimeoutError):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        name = type(seen).__name__
        if name in (
            "CannotConnectNowError",
            "ConnectionDoesNotExistError",
            "ConnectionFailureError",
            "AdminShutdownError",
        ):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def async_url(url: str) -> str:
    """Map the user-facing URL (`sqlite:///x.db`, `postgresql://...`) to its async driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url[len("postgres://") :]
    return url


class _InlineQueue:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once, in the caller's thread."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting coroutine, as the worker thread would
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite without its thread: every SQLite call runs on the event loop's thread. No thread
    hand-off per statement (the dominant cost of small transactions), but the loop waits for each call:
    for single-purpose processes (dialwave simulate), not for the API server."""

    def __init__(self, database: str) -> None:
        super().__init__(lambda: sqlite3.connect(database, isolation_level=None), 64)
        self._tx = _InlineQueue()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()

    @property
    def sqlite(self) -> sqlite3.Connection | None:
        return self._connection


def inline_sqlite(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The SQLite connection under `conn` when it runs inline (a simulation's or a forecast's), else
    None. Inline, a statement may be run on it directly, in the transaction `conn` holds, on this thread:
    no SQLAlchemy execution context, no greenlet, no aiosqlite future (the dispatcher's hot statements)."""
    sync = conn.sync_connection
    if sync is None or conn.dialect.name != "sqlite":
        return None
    driver = sync.connection.driver_connection
    return driver.sqlite if isinstance(driver, _InlineConnection) else None


@asynccontextmanager
async def savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """A nested transaction in `conn`'s: an exception rolls back what ran inside it alone, and goes on.
    On an inline SQLite connection, plain SAVEPOINT statements (no compiled statement per use)."""
    raw = inline_sqlite(conn)
    if raw is None:
        async with conn.begin_nested():
            yield
        return
    raw.execute("SAVEPOINT dialwave_nested")
    try:
        yield
    except BaseException:
        raw.execute("ROLLBACK TO dialwave_nested")
        raw.execute("RELEASE dialwave_nested")
        raise
    raw.execute("RELEASE dialwave_nested")


def _sqlite_engine(
    url: str, *, immediate: bool, pool_size: int, inline: bool = False, throwaway: bool = False
) -> AsyncEngine:
    if inline:
        path = url.split(":///", 1)[1]

        async def creator() -> aiosqlite.Connection:
            return await _InlineConnection(path)

        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60, async_creator=creator)
    else:
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA journal_mode={THROWAWAY_JOURNAL if throwaway else 'WAL'}")
        cur.execute(f"PRAGMA synchronous={'OFF' if throwaway else 'NORMAL'}")
        if throwaway:  # its indexes are updated at random places, thousands of times a second: keep them in memory
            cur.execute(f"PRAGMA cache_size=-{THROWAWAY_CACHE_KIB}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        driver = conn.connection.driver_connection
        if isinstance(driver, _InlineConnection) and driver.sqlite is not None:
            driver.sqlite.execute(sql)  # on this thread anyway: no statement machinery for a BEGIN
        else:
            conn.exec_driver_sql(sql)

    return engine


class Database:
    """SQLite: one writer connection (writes are serialised anyway) and a pool of readers.
    PostgreSQL: one pool for both."""

    def __init__(self, url: str, *, pool_size: int = 10, inline_sqlite: bool = False, throwaway: bool = False) -> None:
        """`throwaway` (SQLite): a database that dies with its process (a simulation's, a forecast's),
        never a user's: no fsync (synchronous=OFF), so a crash may corrupt it, which costs nothing there."""
        self.url = async_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self.inline = inline_sqlite and self.dialect == "sqlite"
        self._held: AsyncConnection | None = None  # inline: the writer connection, kept (see write)
        self._held_lock: asyncio.Lock | None = None
        if self.dialect == "sqlite":
            self.writer = _sqlite_engine(
                self.url, immediate=True, pool_size=1, inline=inline_sqlite, throwaway=throwaway
            )
            self.reader = _sqlite_engine(
                self.url, immediate=False, pool_size=pool_size, inline=inline_sqlite, throwaway=throwaway
            )
        else:
            self.writer = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=20,
                pool_pre_ping=False,
                pool_timeout=POOL_WAIT_SECONDS,
                connect_args={"timeout": CONNECT_SECONDS},
            )
            self.reader = self.writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction: committed on success, rolled back on any exception. Inline SQLite
        keeps its one writer connection checked out, one transaction at a time (as the pool of one did):
        a pool checkout and return cost four times the transaction of a simulation's claim."""
        if self.inline:
            if self._held_lock is None:
                self._held_lock = asyncio.Lock()
            async with self._held_lock:
                if self._held is None:
                    self._held = await self.writer.connect()
                async with self._held.begin():
                    yield self._held
            return
        async with self.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        if self._held is not None:
            await self._held.close()
            self._held = None
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
