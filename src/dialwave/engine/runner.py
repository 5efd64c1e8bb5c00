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


def _next(engine: Engine, wake: datetime | None) -> datetime | None:
    """The earliest of the engine's next wake (`wake`) and its carriers' next events (no lists)."""
    for carrier in engine.carriers.values():
        at = carrier.next_event_at()
        if at is not None and (wake is None or at < wake):
            wake = at
    return wake


class VirtualRunner:
    """Jumps the virtual clock from one due event to the next: days of campaign run in seconds."""

    calm_ticks = True  # False: a whole tick at every instant (the reference its tests compare with)

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
        """Tick at every instant the engine or a carrier has something due. Before the engine's
        `calm_before` (Engine.next_wake) only carrier events and call deadlines can be due: the
        engine's apply_calm stands in for the tick there, and does all of it unless an event ends a
        call or a deadline or the commit is due (most ringing, answered and agent_connected events,
        and the ring timeouts of calls answered since)."""
        engine = self.engine
        calm_before = None
        while True:
            now = self.clock.now()
            calm = calm_before is not None and now < calm_before
            rest = engine.apply_calm(now) if calm else None
            if calm and rest is None:
                wake = engine.next_wake_calm()  # what apply_calm applied was the whole tick
            else:
                await engine.tick(now, rest)
                wake = engine.next_wake()
            calm_before = engine.calm_before if self.calm_ticks else None
            self.ticks += 1
            nxt = _next(engine, wake)
            if nxt is None and stop_when_idle:
                await engine.flush_now(now)
                calm_before = None  # the next tick (at the same instant) is a whole one
                if _next(engine, engine.next_wake()) is None and not engine.dirty:
                    return True
                continue
            if nxt is None or nxt > until:
                break
            self.clock.set(nxt if nxt > now else now + STEP)
        if until > self.clock.now():
            self.clock.set(until)
            await engine.tick(until)
        await engine.flush_now(self.clock.now())
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
                nxt = _next(self.engine, self.engine.next_wake())
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
            nxt = _next(self.engine, self.engine.next_wake())
            delay = 0.05 if nxt is None else max(0.001, (nxt - self.now()).total_seconds() / self.scale)
            await asyncio.sleep(min(delay, 0.05, max(0.0, until - time.monotonic())))
        log.info("dispatcher stopped", calls_left_in_flight=len(self.engine.calls.live))
