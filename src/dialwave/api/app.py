"""The FastAPI application: its dependencies are given (the composition root, dialwave/wiring.py,
builds them); every router is listed here, in one place."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from dialwave import __version__
from dialwave.api import errors
from dialwave.api.deps import AppContext, known_query
from dialwave.api.middleware import (
    BodyGuardMiddleware,
    DatabaseAwayMiddleware,
    IdempotencyMiddleware,
    RequestIdMiddleware,
)
from dialwave.api.routes import (
    agents,
    calls,
    campaigns,
    carriers,
    consents,
    dnc,
    health,
    hosted_carriers,
    leads,
    livekit_events,
    metrics,
    phone_numbers,
    telnyx_events,
    webhook_endpoints,
)
from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings, get_settings
from dialwave.engine.handle import EngineHandle, NoEngine
from dialwave.metrics import Metrics
from dialwave.services.rate_limits import RateLimiter
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database

DESCRIPTION = """Outbound voice campaigns for AI voice agents.

Authenticate with `Authorization: Bearer dw_live_...` or `X-API-Key`. Errors always look like
`{"error": {"type", "message", "fields", "code", "request_id"}}`; `fields` names each offending field by
path (`schedule.windows[1].end`). Every POST takes an `Idempotency-Key`."""

ROUTERS = (
    health.router,
    agents.router,
    phone_numbers.router,
    campaigns.router,
    leads.router,
    dnc.router,
    consents.router,
    calls.router,
    webhook_endpoints.router,
    carriers.router,
    telnyx_events.router,
    livekit_events.router,
    hosted_carriers.router,
)
GIL_SWITCH_SECONDS = 0.001


class Background(Protocol):
    """A service started and stopped with the app (the dispatcher, the webhook delivery worker)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def operation_id(route: APIRoute) -> str:
    """Short, stable operation ids for SDK generators: `{resource}_{action}` (`campaigns_create`)."""
    return f"{str(route.tags[0]).replace('-', '_')}_{route.name}"


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Clock | None = None,
    *,
    engine: EngineHandle | None = None,
    background: Sequence[Background] = (),
    dispose_db: bool = False,
    process_metrics: Metrics | None = None,
) -> FastAPI:
    """The API over `db` (else a new handle on settings.database_url), asking `engine` (else none: an
    API-only process) and running `background` services beside it. The database handle is disposed
    with the app when the app made it, or with `dispose_db`."""
    settings = settings or get_settings()
    # Every database round trip crosses threads (aiosqlite, the CSV parser's slices, sippy): with the
    # default 5 ms GIL switch interval, each trip waited up to 5 ms whenever Python code was running,
    # and a CSV import ran at 53k rows/s in-process; at 1 ms, 69k (docs/benchmarks.md).
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
    database = db or Database(settings.database_url)
    owns_db = db is None or dispose_db

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Background] = []
        try:
            for service in background:
                await service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                await service.stop()
            if owns_db:
                await database.dispose()

    app = FastAPI(
        title="dialwave",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(known_query)],
    )
    the_clock = clock or SystemClock()
    app.state.context = AppContext(
        settings=settings,
        db=database,
        clock=the_clock,
        url_guard=UrlGuard(allow_loopback=settings.webhook_allow_loopback),
        engine=engine or NoEngine(),
        limiter=RateLimiter(settings.rate_limit_per_second, the_clock),
        metrics=process_metrics or Metrics(),
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyGuardMiddleware)
    app.add_middleware(DatabaseAwayMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
