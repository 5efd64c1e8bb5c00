"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dialwave import __version__
from dialwave.api import errors
from dialwave.api.middleware import IdempotencyMiddleware, RequestIdMiddleware
from dialwave.api.routes import agents, campaigns, leads, records
from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings, get_settings
from dialwave.store.db import Database

DESCRIPTION = """Outbound voice campaigns for AI voice agents.

Authenticate with `Authorization: Bearer dw_live_...` or `X-API-Key`. Errors always look like
`{"error": {"type", "message", "fields", "code", "request_id"}}`; `fields` names each offending field by
path (`schedule.windows[1].end`). Every POST takes an `Idempotency-Key`."""


def create_app(settings: Settings | None = None, db: Database | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = db or Database(settings.database_url)
    owns_db = db is None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_db:
            await database.dispose()

    app = FastAPI(title="dialwave", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = database
    app.state.clock = clock or SystemClock()
    errors.install(app)
    for router in (records.health, agents.router, campaigns.router, leads.router, records.router):
        app.include_router(router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
