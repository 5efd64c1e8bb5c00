"""The scrape of `GET /metrics`: the database facts (the webhook backlog) are read now, then the
process's registry is rendered in the Prometheus text format."""

from __future__ import annotations

from dialwave.metrics import Metrics
from dialwave.store.db import Database
from dialwave.store.repositories import webhooks as webhook_repo


async def scrape(db: Database, metrics: Metrics) -> bytes:
    async with db.read() as conn:
        deliveries, events = await webhook_repo.backlog(conn)
    metrics.webhook_backlog.labels("deliveries").set(deliveries)
    metrics.webhook_backlog.labels("events").set(events)
    return metrics.render()
