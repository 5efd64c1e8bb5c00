"""The composition root: the one place that decides which objects make up a running dialwave.

- `serve_app`: `dialwave serve`, the API with (or without) the dispatcher and the webhook delivery
  worker beside it, on the system clock (or a scaled one for demos); `api_app` for each process of
  `dialwave serve --no-engine --workers N`.
- `worker_services`: `dialwave worker`, the dispatcher (and webhook delivery) without the API.
- `virtual_dialwave`: dialwave on a virtual clock (the simulated carrier, the engine, the API over
  ASGI with an HTTP client, and the runner that jumps time), used by `dialwave simulate`, the tests
  and the benchmarks.

What only a server or a worker runs (the engine service with the SIP stack and every real carrier, the
webhook delivery over aiohttp, the metrics server, the dashboard) is imported by the functions that
build it: `dialwave simulate` imports this module for `virtual_dialwave` alone, and those imports were
about a fifth of its start-up."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
from fastapi import FastAPI

from dialwave.api.app import Background, create_app
from dialwave.clock import VirtualClock
from dialwave.config import Settings
from dialwave.domain.resources import SimulatedSettings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.handle import LocalEngine
from dialwave.engine.runner import VirtualRunner
from dialwave.engine.settings import EngineSettings
from dialwave.metrics import Metrics
from dialwave.store.db import Database
from dialwave.telephony.base import Carrier
from dialwave.telephony.simulated import SimulatedCarrier


class FrozenStartupHeap:
    """Once started, the objects the process holds (modules, schemas, SDKs: hundreds of thousands) are
    left out of the garbage collector's full passes (`gc.freeze`). Each such pass walked them all and
    held the interpreter for 50-90 ms, during which no request was answered (a 10 MB lead import
    triggered them; docs/security.md)."""

    async def start(self) -> None:
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        gc.unfreeze()


def serve_app(settings: Settings, *, run_engine: bool) -> FastAPI:
    """The app `dialwave serve` runs: with `run_engine`, the dispatcher (and, unless turned off, the
    webhook delivery worker) run beside the API in this process."""
    from dialwave.clock import SystemClock
    from dialwave.engine.service import EngineService, scaled_clock
    from dialwave.webhooks.transport import AiohttpTransport
    from dialwave.webhooks.worker import DeliveryService, DeliverySettings, DeliveryWorker

    if not run_engine:
        return with_dashboard(create_app(settings, clock=scaled_clock(settings), background=[FrozenStartupHeap()]))
    db = Database(settings.database_url)
    metrics = Metrics()  # the process's: the engine and the webhook worker count, /metrics renders
    service = EngineService(settings, db, metrics)
    background: list[Background] = [FrozenStartupHeap(), service]
    if settings.webhooks:
        options = DeliverySettings(
            timeout=settings.webhook_timeout_seconds, allow_loopback=settings.webhook_allow_loopback
        )
        worker = DeliveryWorker(db, AiohttpTransport(), SystemClock(), options, metrics=metrics)
        background.append(DeliveryService(worker))
    app = create_app(
        settings,
        db,
        service.clock,
        engine=service.handle,
        background=background,
        dispose_db=True,
        process_metrics=metrics,
    )
    return with_dashboard(app)


def api_app() -> FastAPI:
    """The app of `dialwave serve --no-engine --workers N`: each of the N processes builds its own
    from the environment (DIALWAVE_*)."""
    from dialwave.config import get_settings

    return serve_app(get_settings(), run_engine=False)


def worker_services(
    settings: Settings, db: Database, *, webhooks: bool, metrics_port: int | None = None
) -> list[Background]:
    """`dialwave worker`: the dispatcher and (with `webhooks`) the webhook delivery worker, no API;
    with `metrics_port`, their metrics served on it (settings.host)."""
    from dialwave.clock import SystemClock
    from dialwave.engine.service import EngineService
    from dialwave.metrics import MetricsServer
    from dialwave.webhooks.transport import AiohttpTransport
    from dialwave.webhooks.worker import DeliveryService, DeliverySettings, DeliveryWorker

    metrics = Metrics()
    services: list[Background] = [EngineService(settings, db, metrics)]
    if webhooks and settings.webhooks:
        options = DeliverySettings(
            timeout=settings.webhook_timeout_seconds, allow_loopback=settings.webhook_allow_loopback
        )
        worker = DeliveryWorker(db, AiohttpTransport(), SystemClock(), options, metrics=metrics)
        services.append(DeliveryService(worker))
    if metrics_port is not None and settings.metrics_enabled:
        services.append(MetricsServer(metrics, settings.host, metrics_port))
    return services


def with_dashboard(app: FastAPI) -> FastAPI:
    """The API with the operator's pages at `/` (not in its OpenAPI document)."""
    from dialwave.web import install as install_dashboard

    install_dashboard(app)
    return app


@dataclass
class VirtualDialwave:
    db: Database
    clock: VirtualClock
    carrier: SimulatedCarrier
    engine: Engine
    handle: LocalEngine  # what the app asks of the engine (swap `handle.engine` to restart the engine)
    app: FastAPI
    client: httpx.AsyncClient  # speaks to `app` in-process
    runner: VirtualRunner


@asynccontextmanager
async def virtual_dialwave(
    settings: Settings,
    db: Database,
    start: datetime,
    *,
    model: SimulatedSettings | None = None,
    carriers: Mapping[str, Callable[[VirtualClock], Carrier]] | None = None,
    engine_settings: EngineSettings | None = None,
    base_url: str = "http://dialwave.test",
    dashboard: bool = True,
) -> AsyncIterator[VirtualDialwave]:
    """dialwave at `start` on a virtual clock, over `db`: the simulated carrier draws outcomes from
    `model`; `carriers` adds others (name -> factory taking the clock). The engine is closed on exit.
    `dashboard=False`: the API without the operator's pages (`dialwave simulate` asks only the API)."""
    clock = VirtualClock(start)
    carrier = SimulatedCarrier(clock, model)
    extra = {name: make(clock) for name, make in (carriers or {}).items()}
    metrics = Metrics()
    engine = Engine(db, {"simulated": carrier, **extra}, engine_settings or EngineSettings.virtual(), metrics=metrics)
    handle = LocalEngine(engine)
    app = create_app(settings, db=db, clock=clock, engine=handle, process_metrics=metrics)
    if dashboard:
        with_dashboard(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=600) as client:
        virtual = VirtualDialwave(db, clock, carrier, engine, handle, app, client, VirtualRunner(engine, clock))
        try:
            yield virtual
        finally:
            await virtual.engine.close()
