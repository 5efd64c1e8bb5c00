"""Dispatcher throughput and pace accuracy, on a virtual clock with a zero-latency simulated carrier.

python bench/dispatch.py [--backends sqlite,postgresql] [--sizes 10000,1000000] [--decisions 20000]
                         [--shared-caps on,off] [--realtime SECONDS]

1. Dial decisions per second (wall clock) with N leads queued: no window limits (all day, every day;
   the callees are in New York and the run starts at 10:00 there; `--callees toll-free`: toll-free
   numbers, timed in the 42 zones of NANP, from 17:00 New York time), pace 500/s (the maximum),
   concurrency 1000, every call answered and ended at once. The figure at 1,000,000 queued leads should
   be within 1.5x of the one at 10,000 (the cost of a decision must not grow with the queue).
2. Pace accuracy: 50 attempts/s configured, attempts started in 60 virtual seconds (3,000 expected).

On PostgreSQL the caps are held across workers through the database (engine/slots.py: one grant
transaction per batch of starts); `--shared-caps on,off` measures decisions/s with and without it
side by side (off: each worker counts its own calls only, as before several workers were supported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from dialwave.clock import SystemClock
from dialwave.config import Settings
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.resources import SimulatedSettings
from dialwave.engine.dispatcher import Engine
from dialwave.engine.runner import RealtimeRunner
from dialwave.engine.settings import EngineSettings
from dialwave.ids import new_id, new_ids
from dialwave.services import campaigns as campaign_service
from dialwave.services.auth import create_key
from dialwave.services.lead_import import after_bulk_load
from dialwave.services.webhooks import UrlGuard, create_endpoint
from dialwave.store.db import Database
from dialwave.store.migrate import upgrade
from dialwave.store.repositories import agents as agent_repo
from dialwave.store.repositories import campaigns as campaign_repo
from dialwave.store.repositories import phone_numbers as number_repo
from dialwave.store.repositories.leads import LeadBatch, NewLead, insert_leads
from dialwave.telephony.simulated import SimulatedCarrier
from dialwave.wiring import virtual_dialwave

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday, 10:00 in New York
PG = os.environ.get("DIALWAVE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
ZERO = SimulatedSettings(outcomes={"answered": 1.0}, ring_seconds=(0, 0), talk_seconds=(0, 0), conversion_rate=1.0)


async def fresh_database(backend: str) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    else:
        name = f"dw_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(PG)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
        url = PG.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        conn = await asyncpg.connect(PG)
        await conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
        await conn.close()


CALLEES = "+1212"  # --callees toll-free: "+1888", numbers timed in the 42 zones of NANP


def new_york(i: int) -> str:
    """The i-th of up to 8,000,000 valid New York numbers (exchanges 200-999; or toll-free ones with
    --callees toll-free): a number that is not valid (an exchange 000-199) has no known place, and is
    timed in every zone of NANP."""
    return f"{CALLEES}{200 + i // 10_000}{i % 10_000:04d}"


EVENTS = False  # --events: the organization has a webhook endpoint, so the engine writes events


async def seed(
    db: Database,
    leads: int,
    pace: float,
    concurrency: int,
    schedule: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> tuple[str, str]:
    """An active campaign with `leads` queued leads (inserted directly: setup, not measured), begun at
    `at` (default START); returns (organization id, campaign id)."""
    at = at or START
    key = await create_key(db, "bench", ["read", "write"], at)
    org = key.organization_id
    if EVENTS:  # never delivered here (no worker runs): this measures writing them
        await create_endpoint(db, UrlGuard(), org, START, url="https://hooks.example.com/in")
    agent_id, number_id = new_id("agt"), new_id("pn")
    agent = {"name": "a", "status": "live", "system_prompt": "", "opening_message": "Hi"}
    number = {"number": "+12125550100", "provider": "simulated", "active": True}
    async with db.write() as conn:
        await agent_repo.insert_agent(conn, agent_id, org, agent, START)
        await number_repo.insert_number(conn, number_id, org, number, START)
    config = CampaignConfig.model_validate(
        {
            "name": f"bench {leads}",
            "agent_id": agent_id,
            "caller_ids": [{"phone_number_id": number_id}],
            "schedule": schedule or {"windows": [{"start": "00:00", "end": "24:00"}]},
            "pacing": {"max_concurrency": concurrency, "attempts_per_second": pace},
            "dnc": {"enabled": False},
        }
    )
    campaign, _ = await campaign_service.create_campaign(db, org, config, at, UrlGuard())
    cid = campaign["id"]
    batch = 20_000
    for offset in range(0, leads, batch):
        count = min(batch, leads - offset)
        ids = new_ids("lead", count)
        rows = [NewLead(ids[i], new_york(offset + i), {}, None, None) for i in range(count)]
        async with db.write() as conn:
            await insert_leads(conn, org, cid, at, LeadBatch(rows))
            await campaign_repo.add_counts(conn, cid, total=count, queued=count)
            await campaign_repo.set_common_keys(conn, cid, [])
    await campaign_service.act(db, org, cid, "start", at)
    # what the import API does after a big load (ANALYZE on PostgreSQL); DIALWAVE_BENCH_SKIP_ANALYZE=1 to
    # see the engine on stale statistics
    if not os.environ.get("DIALWAVE_BENCH_SKIP_ANALYZE"):
        await after_bulk_load(db, leads)
    return org, str(cid)


async def decisions_per_second(backend: str, leads: int, decisions: int, shared: bool = True) -> float:
    url = await fresh_database(backend)
    db = Database(url)
    try:
        started = time.perf_counter()
        await seed(db, leads, pace=500, concurrency=1000)
        print(f"  [{backend}] seeded {leads:,} leads in {time.perf_counter() - started:.1f}s", flush=True)
        settings = EngineSettings.virtual(shared_caps=shared)
        async with virtual_dialwave(
            Settings(database_url=url), db, START, model=ZERO, engine_settings=settings
        ) as virtual:
            engine, runner = virtual.engine, virtual.runner
            await runner.run_for(timedelta(seconds=2))  # warm up: first claim, caches
            before, t0 = engine.stats["decisions"], time.perf_counter()
            decisions = min(decisions, int(leads * 0.8))  # every call is answered: one decision per lead
            while engine.stats["decisions"] - before < decisions:
                await runner.run_for(timedelta(seconds=10))
            rate = (engine.stats["decisions"] - before) / (time.perf_counter() - t0)
        print(
            f"  [{backend}] {leads:,} queued: {rate:,.0f} decisions/s ({engine.stats['dialed']:,} dialed)"
            + (f"; caps across workers {'on' if shared else 'off'}" if backend == "postgresql" else ""),
            flush=True,
        )
        return rate
    finally:
        await db.dispose()
        await drop_database(url)


async def realtime_rate(backend: str, seconds: float, shared: bool) -> float:
    """Attempts started per second of real time by one worker on the system clock (pace 500/s, the
    zero-latency carrier): what the grant costs when the slots due between two ticks batch up. The
    callees are in New York: run it between 08:00 and 21:00 there (legal hours)."""
    url = await fresh_database(backend)
    db = Database(url)
    try:
        await seed(db, 20_000, pace=500, concurrency=1000, at=datetime.now(UTC))
        clock = SystemClock()
        carrier = SimulatedCarrier(clock, ZERO)
        engine = Engine(db, {"simulated": carrier}, EngineSettings(shared_caps=shared), clock=clock.now)
        runner = RealtimeRunner(engine)
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(2)  # warm up: first claims
        before, t0 = engine.stats["dialed"], time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (engine.stats["dialed"] - before) / (time.perf_counter() - t0)
        runner.stop()
        await task
        await engine.close()
        print(
            f"  [{backend}] real time: {rate:,.0f} attempts/s started (pace 500/s); caps across workers "
            f"{'on' if shared else 'off'}",
            flush=True,
        )
        return rate
    finally:
        await db.dispose()
        await drop_database(url)


async def pace_accuracy(backend: str) -> float:
    url = await fresh_database(backend)
    db = Database(url)
    try:
        await seed(db, 5_000, pace=50, concurrency=1000)
        model = SimulatedSettings(outcomes={"answered": 1.0}, ring_seconds=(1, 5), talk_seconds=(5, 15))
        async with virtual_dialwave(Settings(database_url=url), db, START, model=model) as virtual:
            await virtual.runner.run_for(timedelta(seconds=60))
        async with db.read() as conn:
            import sqlalchemy as sa

            from dialwave.store.tables import calls

            stmt = sa.select(sa.func.count()).where(
                calls.c.started_at >= START, calls.c.started_at < START + timedelta(seconds=60)
            )
            started = int(await conn.scalar(stmt) or 0)
        achieved = started / 60
        off = abs(achieved - 50) / 50
        print(
            f"  [{backend}] pace: configured 50/s, achieved {achieved:.2f}/s over 60 s "
            f"({started} attempts, {off:.2%} off)"
        )
        return achieved
    finally:
        await db.dispose()
        await drop_database(url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--events", action="store_true", help="with a webhook endpoint: events are written")
    parser.add_argument(
        "--callees", choices=("new-york", "toll-free"), default="new-york", help="toll-free: timed in 42 zones"
    )
    parser.add_argument("--shared-caps", default="on", help="PostgreSQL: on, off or on,off (side by side)")
    parser.add_argument("--no-pace", action="store_true", help="skip the pace accuracy run")
    parser.add_argument("--realtime", type=float, default=0, help="PostgreSQL: also N seconds on the system clock")
    args = parser.parse_args()
    global EVENTS, CALLEES, START
    EVENTS = args.events
    if args.callees == "toll-free":  # Monday 17:00 in New York: 08:00 in Guam, legal in every NANP zone
        CALLEES, START = "+1888", datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    machine = platform.processor() or platform.machine()
    print(
        f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}; events: {EVENTS};"
        f" callees: {args.callees}"
    )
    for backend in args.backends.split(","):
        figures = {}
        modes = [m == "on" for m in args.shared_caps.split(",")] if backend == "postgresql" else [True]
        for size in (int(s) for s in args.sizes.split(",")):
            for shared in modes:
                figures[size] = await decisions_per_second(backend, size, args.decisions, shared)
        if len(figures) > 1:
            small, large = figures[min(figures)], figures[max(figures)]
            print(f"  [{backend}] {max(figures):,} vs {min(figures):,}: {small / large:.2f}x slower (target <= 1.5x)")
        if args.realtime and backend == "postgresql":
            for shared in modes:
                await realtime_rate(backend, args.realtime, shared)
        if not args.no_pace:
            await pace_accuracy(backend)


if __name__ == "__main__":
    asyncio.run(main())
