"""Re-planning waiting leads after a schedule edit, with N leads waiting.

python bench/replan.py [--backends sqlite,postgresql] [--leads 1000000]

A campaign whose window is 20:00-21:00 New York, at 12:57 there, paused (so nothing is dialed and the
figures are the re-plan's alone): every lead waits for 20:00 (its next_attempt_at). Then:
1. a narrowing PATCH (20:30-21:00), timed through the campaign service: no re-plan is asked for;
2. a widening PATCH (09:00-21:00), timed: it only marks the campaign;
3. the engine (virtual clock, the real dispatcher) brings every waiting lead forward, in batches of
   5,000 a transaction: the wall time until none waits past now, and the leads moved per second.
The leads are inserted directly and deferred by one statement (setup, not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from dispatch import ZERO, drop_database, fresh_database, seed

from dialwave.config import Settings
from dialwave.services import campaigns as campaign_service
from dialwave.services.webhooks import UrlGuard
from dialwave.store.db import Database
from dialwave.store.tables import campaigns as campaigns_table
from dialwave.store.tables import leads as leads_table
from dialwave.wiring import virtual_dialwave

NOW = datetime(2026, 3, 2, 17, 57, tzinfo=UTC)  # Monday 12:57 in New York
WAITING_UNTIL = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 20:00 in New York
EVENING = {"timezone": "America/New_York", "windows": [{"start": "20:00", "end": "21:00"}]}


async def waiting(db: Database, cid: str) -> int:
    async with db.read() as conn:
        stmt = sa.select(sa.func.count()).where(
            leads_table.c.campaign_id == cid, leads_table.c.next_attempt_at >= WAITING_UNTIL
        )
        return int(await conn.scalar(stmt) or 0)


async def patch_ms(db: Database, org: str, cid: str, windows: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    body = {"schedule": {"windows": windows}}
    await campaign_service.update_campaign(db, org, cid, body, None, NOW, UrlGuard())
    return (time.perf_counter() - started) * 1000


async def run(backend: str, count: int) -> None:
    url = await fresh_database(backend)
    db = Database(url)
    try:
        started = time.perf_counter()
        org, cid = await seed(db, count, pace=1, concurrency=1, schedule=EVENING, at=NOW)
        await campaign_service.act(db, org, cid, "pause", NOW)
        async with db.write() as conn:  # what the claims would have done: every lead waits for 20:00
            await conn.execute(
                leads_table.update().where(leads_table.c.campaign_id == cid).values(next_attempt_at=WAITING_UNTIL)
            )
        print(f"  [{backend}] seeded {count:,} waiting leads in {time.perf_counter() - started:.1f}s", flush=True)
        ms = await patch_ms(db, org, cid, [{"start": "20:30", "end": "21:00"}])
        print(f"  [{backend}] narrowing PATCH: {ms:,.1f} ms, {await waiting(db, cid):,} leads still waiting")
        ms = await patch_ms(db, org, cid, [{"start": "09:00", "end": "21:00"}])
        print(f"  [{backend}] widening PATCH: {ms:,.1f} ms (marks the campaign for the engine)")
        async with virtual_dialwave(Settings(database_url=url), db, NOW, model=ZERO) as virtual:
            started = time.perf_counter()
            while True:
                await virtual.runner.run_for(timedelta(milliseconds=10))
                async with db.read() as conn:
                    pending = await conn.scalar(
                        sa.select(campaigns_table.c.replan_from).where(campaigns_table.c.id == cid)
                    )
                if pending is None:
                    break
            seconds = time.perf_counter() - started
        left = await waiting(db, cid)
        print(
            f"  [{backend}] engine re-plan: {count - left:,} leads brought forward in {seconds:.1f}s "
            f"({(count - left) / seconds:,.0f} leads/s), {left:,} still waiting",
            flush=True,
        )
    finally:
        await db.dispose()
        await drop_database(url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--leads", type=int, default=1_000_000)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for backend in args.backends.split(","):
        await run(backend, args.leads)


if __name__ == "__main__":
    asyncio.run(main())
