"""Webhook delivery throughput: events per second one worker process signs, sends and records.

python bench/webhooks.py [--events 20000] [--db sqlite|postgresql] [--concurrency 64] [--batch 500]

N events sit in the outbox of an organization with one endpoint (a local receiver in its own process,
bench/_receiver.py). The delivery worker (the code `dialwave serve` runs, system clock) fans them out,
claims them, signs each (Standard Webhooks), POSTs them over HTTP/1.1 keep-alive and records every
result, until all are delivered. Target: >= 500 events/s from one process."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from _server import _free_port

from dialwave.clock import SystemClock
from dialwave.services.auth import create_key
from dialwave.services.webhooks import UrlGuard, create_endpoint
from dialwave.store.db import Database
from dialwave.store.migrate import upgrade
from dialwave.store.repositories.webhooks import insert_events
from dialwave.store.tables import webhook_deliveries
from dialwave.webhooks.events import event_row
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliverySettings, DeliveryWorker

PG = os.environ.get("DIALWAVE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
HERE = os.path.dirname(os.path.abspath(__file__))


async def database(kind: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", None
    name = f"dw_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(f"{PG}/test")
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return f"{PG}/{name}", name


async def run(args: argparse.Namespace) -> None:
    url, pg_name = await database(args.db)
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = datetime.now(UTC)
    key = await create_key(db, "bench", ["read", "write"], now)
    org = key.organization_id
    port = _free_port()
    guard = UrlGuard(allow_loopback=True)
    _, secret = await create_endpoint(db, guard, org, now, url=f"http://127.0.0.1:{port}/hook")
    receiver = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, os.path.join(HERE, "_receiver.py"), str(port), secret],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    data = {"call_id": "call_x", "campaign_id": "cmp_x", "outcome": "answered", "duration_seconds": 42.0}
    for start in range(0, args.events, 5000):
        rows = [event_row(org, "call.ended", data, now) for _ in range(min(5000, args.events - start))]
        async with db.write() as conn:
            await insert_events(conn, rows)
    settings = DeliverySettings(
        allow_loopback=True, concurrency=args.concurrency, batch=args.batch, fanout_batch=max(args.batch, 2000)
    )
    transport = AiohttpTransport(args.concurrency)
    worker = DeliveryWorker(db, transport, SystemClock(), settings)
    started = time.perf_counter()
    rounds = 0
    while await worker.run_once() or await worker.next_due() is not None:
        rounds += 1
    elapsed = time.perf_counter() - started
    async with db.read() as conn:
        delivered = await conn.scalar(
            sa.select(sa.func.count()).select_from(webhook_deliveries).where(webhook_deliveries.c.status == "succeeded")
        )
    await worker.transport.close()
    out, _ = receiver.communicate("", timeout=30)
    distinct, requests, bad = (int(x) for x in out.split())
    await db.dispose()
    if pg_name:
        conn = await asyncpg.connect(f"{PG}/test")
        await conn.execute(f"DROP DATABASE {pg_name} WITH (FORCE)")
        await conn.close()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"database: {args.db}; events: {args.events}; concurrency {args.concurrency}; batch {args.batch}")
    print(f"rounds: {rounds}; delivered (recorded succeeded): {delivered}")
    print(f"receiver: {distinct} distinct ids, {requests} requests, {bad} failed verification")
    print(f"elapsed: {elapsed:.2f} s -> {delivered / elapsed:,.0f} events/s delivered (target >= 500)")
    if delivered != args.events or distinct != args.events or bad:
        raise SystemExit("not every event was delivered exactly as expected")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
