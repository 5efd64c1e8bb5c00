"""The delivery worker: fans new events out to the endpoints of the moment, then sends due deliveries.

One round (`run_once`): (1) every unsent event gets one delivery per matching enabled endpoint, in one
transaction; (2) due deliveries are claimed with a lease (SKIP LOCKED on PostgreSQL, so several workers
share the work); (3) they are sent concurrently, each signed at send time; (4) the results are recorded
in one transaction. A worker that dies between (3) and (4) leaves its deliveries leased: they are due
again when the lease runs out and are sent again with the same `webhook-id` (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import RowMapping

from dialwave.clock import Clock
from dialwave.domain.webhooks import matches, retry_at
from dialwave.errors import TransportError, UnsafeUrl
from dialwave.ids import new_ids
from dialwave.metrics import Metrics
from dialwave.store.db import Database
from dialwave.store.repositories import webhooks as repo
from dialwave.webhooks import signing
from dialwave.webhooks.ssrf import Resolver, SystemResolver
from dialwave.webhooks.transport import Transport, post_checked

log = structlog.get_logger("dialwave.webhooks")


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 10.0  # seconds per request
    batch: int = 500  # deliveries claimed per round
    concurrency: int = 64  # requests in flight at once
    lease: timedelta = timedelta(seconds=60)  # a claimed delivery is due again after this (must exceed timeout)
    fanout_batch: int = 2000
    allow_loopback: bool = False


@dataclass
class Result:
    row: RowMapping
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class DeliveryWorker:
    db: Database
    transport: Transport
    clock: Clock
    settings: DeliverySettings = field(default_factory=DeliverySettings)
    resolver: Resolver = field(default_factory=SystemResolver)
    wall: Callable[[], float] = time.time  # the webhook-timestamp header is the real send time
    rng: random.Random = field(default_factory=random.Random)
    stats: dict[str, int] = field(default_factory=lambda: {"sent": 0, "succeeded": 0, "failed_sends": 0})
    metrics: Metrics = field(default_factory=Metrics)  # the process's (shared with its API's /metrics)

    async def run_once(self) -> int:
        """One round; returns how many requests it sent."""
        now = self.clock.now()
        await self.fan_out(now)
        claimed = await self.claim(now)
        if not claimed:
            return 0
        results = await self.send(claimed)
        await self.record(results)
        return len(results)

    async def fan_out(self, now: datetime) -> int:
        async with self.db.write() as conn:
            new = await repo.unsent_events(conn, self.settings.fanout_batch)
            if not new:
                return 0
            endpoints = await repo.enabled_endpoints(conn, {e["organization_id"] for e in new})
            rows: list[dict[str, Any]] = []
            for event in new:
                for ep in endpoints:
                    if ep["organization_id"] != event["organization_id"]:
                        continue
                    if ep["campaign_id"] is not None and ep["campaign_id"] != event["campaign_id"]:
                        continue
                    if not matches(ep["event_types"], event["type"]):
                        continue
                    rows.append(
                        {
                            "organization_id": event["organization_id"],
                            "endpoint_id": ep["id"],
                            "event_id": event["id"],
                            "event_type": event["type"],
                            "status": "pending",
                            "attempts": 0,
                            "failures": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
            for row, delivery_id in zip(rows, new_ids("dlv", len(rows)), strict=True):
                row["id"] = delivery_id
            await repo.insert_deliveries(conn, rows)
            await repo.mark_fanned_out(conn, [e["seq"] for e in new])
        return len(rows)

    async def claim(self, now: datetime) -> Sequence[RowMapping]:
        async with self.db.write() as conn:
            return await repo.claim_deliveries(conn, now, now + self.settings.lease, self.settings.batch)

    async def send(self, claimed: Sequence[RowMapping]) -> list[Result]:
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(row: RowMapping) -> Result:
            async with gate:
                return await self._send_one(row)

        return list(await asyncio.gather(*(one(r) for r in claimed)))

    async def _send_one(self, row: RowMapping) -> Result:
        now = self.clock.now()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            body = row["payload"].encode()
            live = signing.live_secrets(row["secrets"], now)
            headers = signing.headers(live, row["event_id"], int(self.wall()), body)
            reply = await post_checked(
                self.transport,
                row["url"],
                self.resolver,
                self.settings.allow_loopback,
                headers,
                body,
                self.settings.timeout,
            )
            status = reply.status
        except UnsafeUrl as exc:
            error = f"refused: {exc.message}"
        except TransportError as exc:
            error = exc.message
        duration = int((time.perf_counter() - started) * 1000)
        return Result(row, now, status, error, duration)

    async def record(self, results: list[Result]) -> None:
        now = self.clock.now()
        updates: list[dict[str, Any]] = []
        attempts: list[dict[str, Any]] = []
        disabled: dict[str, str] = {}
        for r in results:
            row = r.row
            self.stats["sent"] += 1
            self.metrics.webhook_sent.inc()
            if not r.ok:
                self.metrics.webhook_failures.inc()
            values: dict[str, Any] = {
                "id": row["id"],
                "status": "pending",
                "failures": row["failures"],
                "next_attempt_at": None,
                "delivered_at": None,
                "last_attempt_at": r.at,
                "last_status_code": r.status_code,
                "last_error": r.error if r.error is None else r.error[:512],
            }
            if r.ok:
                self.stats["succeeded"] += 1
                values.update(status="succeeded", delivered_at=now)
            elif r.status_code == 410:
                reason = f"the endpoint answered 410 Gone at {now.isoformat()}"
                disabled[row["endpoint_id"]] = reason
                values.update(status="failed", last_error="410 Gone: endpoint disabled")
            else:
                self.stats["failed_sends"] += 1
                failures = row["failures"] + 1
                again = retry_at(failures, now, self.rng)
                values.update(failures=failures, next_attempt_at=again)
                if again is None:
                    values["status"] = "failed"
            updates.append(values)
            attempts.append(
                {
                    "delivery_id": row["id"],
                    "attempt": row["attempts"],
                    "at": r.at,
                    "status_code": r.status_code,
                    "error": r.error if r.error is None else r.error[:512],
                    "duration_ms": r.duration_ms,
                }
            )
        async with self.db.write() as conn:
            await repo.record_results(conn, updates, attempts, disabled)
        for endpoint_id, reason in disabled.items():
            log.warning("webhook endpoint disabled", endpoint_id=endpoint_id, reason=reason)

    async def next_due(self) -> datetime | None:
        """When a delivery is next due (now when events wait to be fanned out); None when idle."""
        async with self.db.read() as conn:
            if await repo.has_unsent(conn):
                return self.clock.now()
            return await repo.next_delivery_at(conn)


class DeliveryService:
    """The worker in real time, beside the API in `dialwave serve`: a round whenever work is due,
    otherwise a short poll (or a nudge after a commit that wrote events)."""

    def __init__(self, worker: DeliveryWorker, idle: float = 0.25) -> None:
        self.worker = worker
        self.idle = idle
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def nudge(self) -> None:
        self.wake.set()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="webhook-delivery")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.worker.transport.close()

    async def _loop(self) -> None:
        while True:
            try:
                sent = await self.worker.run_once()
            except Exception:
                log.exception("webhook delivery round failed")
                sent = 0
            if sent:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.idle)
