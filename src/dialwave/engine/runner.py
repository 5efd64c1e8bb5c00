"""Drivers of the engine's tick: real time (`dialwave serve`), scaled time (demo with the simulated
carrier) and virtual time (tests, `dialwave simulate`), all on the one Clock abstraction."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import structlog

from dialwave.clock import VirtualClock
from dialwave.engine.dispatcher import Engine
from dialwave.store.db import unreachable

log = structlog.get_logger("dialwave.engine")
STEP = timedelta(milliseconds=1)


class ScaledClock:
    """Engine time that runs `scale` times faster than real time from the moment it is made; with
    `epoch` (several processes on one database), from that wall-clock instant instead, so that every
    process reads the same engine time: epoch + (wall time - epoch) x scale."""

    def __init__(self, scale: float, start: datetime | None = None, epoch: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self.epoch = epoch
        self.origin = start or datetime.now(UTC)
        self.mono = time.monotonic()

    def now(self) -> datetime:
        if self.epoch is not None:
            return self.epoch + timedelta(seconds=(time.time() - self.epoch.timestamp()) * self.scale)
        return self.origin + timedelta(seconds=(time.monotonic() - self.mono) * self.scale)


def _next(engine: Engine) -> datetime | None:
    """The earliest of the engine's next wake and its carriers' next events (once a tick: no lists)."""
    best = engine.next_wake()
    for carrier in engine.carriers.values():
        at = carrier.next_event_at()
        if at is not None and (best is None or at < best):
            best = at
    return best


class VirtualRunner:
    """Jumps the virtual clock from one due event to the next: days of campaign run in seconds."""

    def __init__(self, engine: Engine, clock: VirtualClock) -> None:
        self.engine = engine
        self.clock = clock
        self.ticks = 0

    async def run_until(self, until: datetime) -> None:
        """Run every tick due up to `until`, then leave the clock at `until` with all writes flushed."""
        await self._run(until.astimezone(UTC), stop_when_idle=False)

    async def run_for(self, delta: timedelta) -> None:
        await self.run_until(self.clock.now() + delta)

    async def run_until_idle(self, limit: timedelta) -> bool:
        """Run until nothing is scheduled any more (True), or `limit` of engine time passes (False)."""
        return await self._run(self.clock.now() + limit, stop_when_idle=True)

    async def _run(self, until: datetime, *, stop_when_idle: bool) -> bool:
        while True:
            now = self.clock.now()
            await self.engine.tick(now)
            self.ticks += 1
            nxt = _next(self.engine)
            if nxt is None and stop_when_idle:
                await self.engine.flush_now(now)
                if _next(self.engine) is None and not self.engine.dirty:
                    return True
                continue
            if nxt is None or nxt > until:
                break
            self.clock.set(nxt if nxt > now else now + STEP)
        if until > self.clock.now():
            self.clock.set(until)
            await self.engine.tick(until)
        await self.engine.flush_now(self.clock.now())
        return False


class RealtimeRunner:
    """Runs ticks on a real (or scaled) clock until stopped; `nudge()` wakes it early."""

    def __init__(self, engine: Engine, clock: ScaledClock | None = None, *, idle_poll: float = 0.5) -> None:
        self.engine = engine
        self.clock = clock
        self.scale = clock.scale if clock is not None else 1.0
        self.idle_poll = idle_poll
        self._wake = asyncio.Event()
        self._stop = False
        self.grace = 0.0

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def nudge(self) -> None:
        self._wake.set()

    def stop(self, grace: float = 0.0) -> None:
        """Stop; with `grace` (seconds), first give claimed leads back and let calls in flight finish,
        for at most that long (a graceful stop: SIGTERM)."""
        self.grace = grace
        self._stop = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stop:
            self._wake.clear()  # a nudge during the tick below wakes the wait at once
            try:
                await self.engine.tick(self.now())
                nxt = _next(self.engine)
                delay = self.idle_poll
                if nxt is not None:
                    delay = min(delay, max(0.0, (nxt - self.now()).total_seconds() / self.scale))
            except Exception as exc:
                self.engine.failed(exc)
                if unreachable(exc):
                    log.warning("engine tick failed: the database is away; retrying in 1 s", error=type(exc).__name__)
                else:
                    log.exception("engine tick failed; retrying in 1 s")
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.001))  # never a busy loop
        if self.grace > 0:
            await self._drain()
        await self.engine.flush_now(self.now())

    async def _drain(self) -> None:
        self.engine.drain(self.now())
        until = time.monotonic() + self.grace
        while time.monotonic() < until:
            try:
                await self.engine.tick(self.now())
            except Exception:
                log.exception("engine tick failed while stopping")
            if not self.engine.calls.live:
                break
            nxt = _next(self.engine)
            delay = 0.05 if nxt is None else max(0.001, (nxt - self.now()).total_seconds() / self.scale)
            await asyncio.sleep(min(delay, 0.05, max(0.0, until - time.monotonic())))
        log.info("dispatcher stopped", calls_left_in_flight=len(self.engine.calls.live))
