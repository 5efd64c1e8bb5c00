"""Shared fixtures: every storage/API test runs on SQLite and on PostgreSQL.

PostgreSQL: one migrated template database per session, then `CREATE DATABASE ... TEMPLATE` per test.
With CI=true a missing PostgreSQL fails the run; elsewhere those tests skip with a message."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dialwave.api.app import create_app
from dialwave.clock import VirtualClock
from dialwave.config import Settings
from dialwave.logging import configure_logging
from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.store.migrate import upgrade

PG_ADMIN = os.environ.get("DIALWAVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


def _pg_base() -> str:
    return PG_ADMIN.rsplit("/", 1)[0]


@pytest.fixture(scope="session", autouse=True)
def plain_logs() -> None:
    """Logs as `dialwave serve` writes them (one line an event; an exception without its locals)."""
    configure_logging("info")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _in_thread(coro_fn: Any) -> Any:
    """Run a coroutine on its own loop in a worker thread (usable from sync fixtures under a running loop)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def migrated_pg_database(prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database (its name), dropped afterwards: skipped without PostgreSQL,
    a failure in CI."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        _in_thread(lambda: _admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN}: {exc}")
    try:
        upgrade(f"{_pg_base()}/{name}")
        yield name
    finally:
        _in_thread(lambda: _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    with migrated_pg_database("dw_tmpl") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "dialwave.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"dw_t_{uuid.uuid4().hex[:12]}"
    await _admin(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    yield f"{_pg_base()}/{name}"
    await _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Virtual time stands still between requests: no rate limit (test_rate_limits.py sets one).
    return Settings(database_url=db_url, rate_limit_per_second=0)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@dataclass
class Api:
    """An HTTP client for one organization's key."""

    client: httpx.AsyncClient
    key: str
    org_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        response = await getattr(self, method)(url, **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None


@pytest.fixture
async def http(settings: Settings, db: Database, clock: VirtualClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialwave.test") as client:
        yield client


async def make_api(http: httpx.AsyncClient, db: Database, org: str, scopes: tuple[str, ...] = ("read", "write")) -> Api:
    created = await create_key(db, org, list(scopes), T0)
    return Api(http, created.key, created.organization_id)


@pytest.fixture
async def api(http: httpx.AsyncClient, db: Database) -> Api:
    return await make_api(http, db, "acme")


@pytest.fixture
async def other_api(http: httpx.AsyncClient, db: Database) -> Api:
    return await make_api(http, db, "globex")
