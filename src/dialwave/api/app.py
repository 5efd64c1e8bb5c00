"""The FastAPI application."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from dialwave import __version__
from dialwave.api import errors
from dialwave.api.deps import EngineSignal
from dialwave.api.middleware import IdempotencyMiddleware, RequestIdMiddleware
from dialwave.api.routes import agents, campaigns, carriers, leads, records, webhooks
from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings, get_settings
from dialwave.engine.service import EngineService
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database
from dialwave.telephony.twilio import TwilioCarrier
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliveryService, DeliverySettings, DeliveryWorker

DESCRIPTION = """Outbound voice campaigns for AI voice agents.

Authenticate with `Authorization: Bearer dw_live_...` or `X-API-Key`. Errors always look like
`{"error": {"type", "message", "fields", "code", "request_id"}}`; `fields` names each offending field by
path (`schedule.windows[1].end`). Every POST takes an `Idempotency-Key`."""


GIL_SWITCH_SECONDS = 0.001


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Clock | None = None,
    *,
    run_engine: bool = False,
    engine_signal: EngineSignal | None = None,
    twilio: TwilioCarrier | None = None,
    engine_results: Callable[[str, bool | None, datetime | None], bool] | None = None,
) -> FastAPI:
    """The API. `run_engine` also runs the dispatcher in this process (dialwave serve); tests that drive
    an engine on a virtual clock pass its `engine_signal` instead."""
    settings = settings or get_settings()
    # Every database round trip crosses threads (aiosqlite, the CSV parser's slices, sippy): with the
    # default 5 ms GIL switch interval, each trip waited up to 5 ms whenever Python code was running,
    # and a CSV import ran at 53k rows/s in-process; at 1 ms, 69k (docs/benchmarks.md).
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
    database = db or Database(settings.database_url)
    owns_db = db is None
    service = EngineService(settings, database) if run_engine else None
    delivery: DeliveryService | None = None
    if run_engine and settings.webhooks:
        options = DeliverySettings(
            timeout=settings.webhook_timeout_seconds, allow_loopback=settings.webhook_allow_loopback
        )
        worker = DeliveryWorker(database, AiohttpTransport(), SystemClock(), options)
        delivery = DeliveryService(worker)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            await service.start()
        if delivery is not None:
            await delivery.start()
        try:
            yield
        finally:
            if delivery is not None:
                await delivery.stop()
            if service is not None:
                await service.stop()
            if owns_db:
                await database.dispose()

    app = FastAPI(title="dialwave", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = database
    app.state.clock = clock or (service.clock if service is not None else SystemClock())
    app.state.engine_signal = service.signal if service is not None else engine_signal
    app.state.url_guard = UrlGuard(allow_loopback=settings.webhook_allow_loopback)
    app.state.twilio = service.twilio if service is not None else twilio
    app.state.engine_wake = service.runner.nudge if service is not None else None
    app.state.engine_results = service.engine.note_result if service is not None else engine_results
    errors.install(app)
    routers = (records.health, agents.router, campaigns.router, leads.router, records.router, webhooks.router)
    for router in (*routers, carriers.router):
        app.include_router(router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
