"""GET /metrics: the Prometheus text format of the process's metrics, equal to what the call records
say after a campaign ran on the virtual clock (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dialwave.api.app import create_app
from dialwave.config import Settings
from dialwave.metrics import Metrics, MetricsServer
from dialwave.store.db import Database
from dialwave.store.tables import events
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliverySettings, DeliveryWorker
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio


def samples(text: str) -> dict[str, list[Sample]]:
    """Every sample of the scrape by its name (counters' `_total`, histograms' `_count`...)."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    return sum(s.value for s in found.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def test_metrics_equal_the_call_records_after_a_campaign(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(seed=11), allow_loopback=True) as rig:
        nobody = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, every send fails
        await rig.api.ok("post", "/v1/webhook-endpoints", 201, json={"url": nobody})
        numbers = [f"+1212555{2000 + i:04d}" for i in range(30)]
        cid = await rig.campaign(numbers, pacing={"max_concurrency": 3, "attempts_per_second": 1})
        await rig.until_idle()
        assert (await rig.get(cid))["status"] == "completed"
        calls = await rig.calls(cid)
        assert calls and all(c["status"] == "ended" for c in calls)

        response = await rig.api.client.get("/metrics")  # no API key: unauthenticated like /healthz
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)

        assert value(found, "dialwave_call_attempts_total", campaign_id=cid) == len(calls)
        outcomes = Counter(str(c["outcome"]) for c in calls)
        assert len(outcomes) > 1  # the seed gives several outcomes
        scraped = {
            s.labels["outcome"]: s.value
            for s in found["dialwave_call_outcomes_total"]
            if s.labels["campaign_id"] == cid
        }
        assert scraped == outcomes
        assert value(found, "dialwave_calls_in_flight") == 0
        assert value(found, "dialwave_dial_duration_seconds_count") == len(calls)
        assert value(found, "dialwave_claim_duration_seconds_count") >= 1
        assert value(found, "dialwave_campaigns_owned") == 0  # completed: no longer dispatched
        async with db.read() as conn:
            unsent = (await conn.execute(sa.select(sa.func.count()).where(events.c.fanned_out.is_(False)))).scalar()
        assert unsent and value(found, "dialwave_webhook_backlog", kind="events") == unsent
        assert value(found, "dialwave_webhook_backlog", kind="deliveries") == 0
        assert value(found, "dialwave_webhook_delivery_failures_total") == 0
        assert all(name.startswith("dialwave_") for name in found)

        # one delivery round in this process: every event fanned out, every send failed (retried later)
        options = DeliverySettings(allow_loopback=True, timeout=2)
        worker = DeliveryWorker(db, AiohttpTransport(), rig.clock, options, metrics=rig.engine.metrics)
        try:
            sent = await worker.run_once()
        finally:
            await worker.transport.close()
        found = samples((await rig.api.client.get("/metrics")).text)
        assert sent == unsent
        assert value(found, "dialwave_webhook_backlog", kind="events") == 0
        assert value(found, "dialwave_webhook_backlog", kind="deliveries") == sent
        assert value(found, "dialwave_webhook_deliveries_sent_total") == sent
        assert value(found, "dialwave_webhook_delivery_failures_total") == sent


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/none.db", metrics_enabled=False)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialwave.test") as client:
        assert (await client.get("/metrics")).status_code == 404
    assert "/metrics" not in app.openapi()["paths"]


async def test_a_worker_serves_its_metrics_on_its_own_port() -> None:
    metrics = Metrics()
    metrics.attempts.labels("cmp_x").inc(3)
    server = MetricsServer(metrics, "127.0.0.1", 0)  # port 0: any free port
    await server.start()
    try:
        assert server.server is not None
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{server.server.server_port}/metrics")
        assert response.status_code == 200
        assert value(samples(response.text), "dialwave_call_attempts_total", campaign_id="cmp_x") == 3
    finally:
        await server.stop()
