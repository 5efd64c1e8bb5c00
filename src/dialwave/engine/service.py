"""The dispatcher as a background service of the API process (`dialwave serve`)."""

from __future__ import annotations

import asyncio

import structlog

from dialwave.clock import Clock, SystemClock
from dialwave.config import Settings
from dialwave.engine.dispatcher import Engine, EngineSettings
from dialwave.engine.runner import RealtimeRunner, ScaledClock
from dialwave.errors import DialwaveError
from dialwave.store.db import Database
from dialwave.store.repositories.agents import providers_in_use
from dialwave.telephony.base import Carrier
from dialwave.telephony.simulated import SimulatedCarrier
from dialwave.telephony.sip import SipCarrier
from dialwave.telephony.twilio import TwilioCarrier

log = structlog.get_logger("dialwave.engine")


class EngineService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.scaled = ScaledClock(settings.time_scale) if settings.time_scale != 1.0 else None
        self.clock: Clock = self.scaled or SystemClock()
        self.twilio = TwilioCarrier(self.clock, settings.public_url, settings.twilio_api_base)
        self.sip = SipCarrier(self.clock, settings.sip_host, settings.sip_port)
        carriers: dict[str, Carrier] = {
            "simulated": SimulatedCarrier(self.clock),
            "twilio": self.twilio,
            "sip": self.sip,
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
        self.sip.wake = self.runner.nudge  # SIP events arrive from the network at any time
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.scaled is not None:
            async with self.db.read() as conn:
                real = sorted(p for p in await providers_in_use(conn) if p != "simulated")
            if real:
                raise DialwaveError(
                    f"--time-scale is for the simulated carrier only; phone numbers use {', '.join(real)}"
                )
        self.task = asyncio.create_task(self.runner.run(), name="dialwave-dispatcher")
        log.info("dispatcher started", time_scale=self.settings.time_scale)

    def signal(self, org_id: str, campaign_id: str | None) -> None:
        self.engine.invalidate(org_id, campaign_id)
        self.runner.nudge()

    async def stop(self) -> None:
        if self.task is None:
            return
        self.runner.stop()
        try:
            await asyncio.wait_for(self.task, 10)
        except TimeoutError:
            self.task.cancel()
        await self.engine.close()
        await self.twilio.close()
        await self.sip.close()
