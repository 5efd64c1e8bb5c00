"""The dispatcher as a background service of the API process (`dialwave serve`): the real carriers,
the engine on the system clock (or a scaled one for demos), its runner, and the handle the API is given."""

from __future__ import annotations

import asyncio

import structlog

from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.handle import LocalEngine
from dialwave.engine.runner import RealtimeRunner, ScaledClock
from dialwave.engine.settings import EngineSettings
from dialwave.errors import DialwaveError
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
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.scaled = ScaledClock(settings.time_scale) if settings.time_scale != 1.0 else None
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
        self.engine = Engine(
            db,
            carriers,
            EngineSettings(
                number_attempts_per_24h=settings.number_attempts_per_24h,
                allow_loopback=settings.webhook_allow_loopback,
            ),
        )
        self.runner = RealtimeRunner(self.engine, self.scaled)
        sip.wake = self.runner.nudge  # SIP events arrive from the network at any time
        livekit.wake = self.runner.nudge  # so do the answers of LiveKit's dials
        self.handle = LocalEngine(self.engine, self.runner.nudge)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.scaled is not None:
            real = sorted(p for p in await providers_in_use(self.db) if p != "simulated")
            if real:
                raise DialwaveError(
                    f"--time-scale is for the simulated carrier only; phone numbers use {', '.join(real)}"
                )
        self.task = asyncio.create_task(self.runner.run(), name="dialwave-dispatcher")
        log.info("dispatcher started", time_scale=self.settings.time_scale)

    async def stop(self) -> None:
        if self.task is None:
            return
        self.runner.stop()
        try:
            await asyncio.wait_for(self.task, 10)
        except TimeoutError:
            self.task.cancel()
        await self.engine.close()
        for carrier in self.engine.carriers.values():
            await carrier.close()
