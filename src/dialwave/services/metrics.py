"""The scrape of `GET /metrics`: the database facts (the webhook backlog) are read now, then the
process's registry is rendered in the Prometheus text format (on a thread: the GIL is switched every
millisecond, so requests are answered during a long render)."""

from __future__ import annotations

import asyncio

from dialwave.metrics import Metrics
from dialwave.store.db import Database
from dialwave.store.repositories import webhooks as webhook_repo


async def scrape(db: Database, metrics: Metrics) -> bytes:
    async with db.read() as conn:
        deliveries, events = await webhook_repo.backlog(conn)
    metrics.webhook_backlog.labels("deliveries").set(deliveries)
    metrics.webhook_backlog.labels("events").set(events)
    # on a thread: with a thousand campaigns a render takes ~80 ms (bench/metrics.py), and requests go on meanwhile
    return await asyncio.to_thread(metrics.render)
