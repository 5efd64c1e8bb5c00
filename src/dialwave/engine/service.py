"""The dispatcher as a background service of the API process (`dialwave serve`): the real carriers,
the engine on the system clock (or a scaled one for demos), its runner, and the handle the API is given."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from dataclasses import replace
from typing import IO

import structlog

from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings
from dialwave.engine.carrier_relay import CarrierRelay
from dialwave.engine.dispatcher import Engine
from dialwave.engine.handle import LocalEngine
from dialwave.engine.runner import RealtimeRunner, ScaledClock
from dialwave.engine.settings import EngineSettings
from dialwave.errors import DialwaveError
from dialwave.metrics import Metrics
from dialwave.services.phone_numbers import providers_in_use
from dialwave.store.db import Database
from dialwave.telephony.base import Carrier
from dialwave.telephony.livekit import LiveKitCarrier
from dialwave.telephony.retell import RetellCarrier
from dialwave.telephony.simulated import SimulatedCarrier
from dialwave.telephony.sip import SipCarrier
from dialwave.telephony.telnyx import TelnyxCarrier
from dialwave.telephony.twilio import TwilioCarrier
from dialwave.telephony.vapi import VapiCarrier

log = structlog.get_logger("dialwave.engine")


class EngineService:
    def __init__(self, settings: Settings, db: Database, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.db = db
        self.scaled = scaled_clock(settings)
        self.clock: Clock = self.scaled or SystemClock()
        sip = SipCarrier(self.clock, settings.sip_host, settings.sip_port)
        livekit = LiveKitCarrier(self.clock, settings.public_url)
        carriers: dict[str, Carrier] = {
            "simulated": SimulatedCarrier(self.clock),
            "twilio": TwilioCarrier(self.clock, settings.public_url, settings.twilio_api_base),
            "sip": sip,
            "telnyx": TelnyxCarrier(self.clock, settings.public_url, settings.telnyx_api_base),
            "livekit": livekit,
            "vapi": VapiCarrier(self.clock, settings.public_url, settings.vapi_api_base),
            "retell": RetellCarrier(self.clock, settings.public_url, settings.retell_api_base),
        }
        self.engine = Engine(db, carriers, engine_settings(settings), clock=self.clock.now, metrics=metrics)
        self.runner = RealtimeRunner(self.engine, self.scaled)
        sip.wake = self.runner.nudge  # SIP events arrive from the network at any time
        livekit.wake = self.runner.nudge  # so do the answers of LiveKit's dials
        self.handle = LocalEngine(self.engine, self.runner.nudge)
        # carriers' webhooks (PostgreSQL) and runtime results for this engine's calls that another
        # process received
        self.relay = CarrierRelay(db, carriers, self.runner.nudge, self.clock.now, calls=self.engine.calls)
        self.task: asyncio.Task[None] | None = None
        self.relay_task: asyncio.Task[None] | None = None
        self.only_engine: IO[bytes] | None = None

    async def start(self) -> None:
        self.only_engine = only_engine_on_sqlite(self.db)
        if self.scaled is not None:
            real = sorted(p for p in await providers_in_use(self.db) if p != "simulated")
            if real:
                raise DialwaveError(
                    f"--time-scale is for the simulated carrier only; phone numbers use {', '.join(real)}"
                )
        self.task = asyncio.create_task(self.runner.run(), name="dialwave-dispatcher")
        self.relay_task = asyncio.create_task(self.relay.run(), name="dialwave-carrier-relay")
        log.info("dispatcher started", time_scale=self.settings.time_scale)

    async def stop(self) -> None:
        if self.task is not None:
            grace = self.settings.stop_grace_seconds
            self.runner.stop(grace)
            try:
                await asyncio.wait_for(self.task, grace + 10)
            except TimeoutError:
                self.task.cancel()
            await self._stop_relay()
            await self.engine.close()
            for carrier in self.engine.carriers.values():
                await carrier.close()
        if self.only_engine is not None:
            self.only_engine.close()  # the lock goes with the file
            self.only_engine = None

    async def _stop_relay(self) -> None:
        if self.relay_task is not None:
            self.relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.relay_task
            self.relay_task = None
        await self.relay.close()


def engine_settings(settings: Settings) -> EngineSettings:
    """The dispatcher's settings; with a time scale, its periods of housekeeping (re-reading campaigns,
    group commits, asking again for room across workers) stay what they are in real time."""
    base = EngineSettings(
        number_attempts_per_24h=settings.number_attempts_per_24h,
        allow_loopback=settings.webhook_allow_loopback,
    )
    scale = settings.time_scale
    if scale <= 1.0:
        return base
    return replace(
        base,
        refresh_every=base.refresh_every * scale if base.refresh_every is not None else None,
        flush_every=base.flush_every * scale,
        cap_retry=base.cap_retry * scale,
    )


def scaled_clock(settings: Settings) -> ScaledClock | None:
    """The engine's scaled clock (--time-scale), shared by every process when an epoch is set."""
    if settings.time_scale == 1.0:
        return None
    return ScaledClock(settings.time_scale, epoch=settings.time_scale_epoch)


def only_engine_on_sqlite(db: Database) -> IO[bytes] | None:
    """SQLite runs one engine: an exclusive lock on a file beside the database, held while the engine
    runs; a second engine on the same file refuses to start. (PostgreSQL takes several workers.)"""
    if db.dialect != "sqlite":
        return None
    path = db.url.split(":///", 1)[-1]
    if not path or path == ":memory:":
        return None
    lock = open(f"{path}.engine.lock", "wb")  # noqa: SIM115 - held open for the engine's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        lock.close()
        raise DialwaveError(
            f"another dialwave engine already runs on the SQLite database {path}: SQLite runs one engine "
            "process (serve with the engine, or one worker); use PostgreSQL for several workers"
        ) from exc
    return lock
