"""What a campaign is doing now, for the operator: calls in flight, its pace, attempts and outcomes per
minute, and the live stream of its state (`GET /v1/campaigns/{id}/stream`, the dashboard, the CLI)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from dialwave.clock import Clock
from dialwave.domain import campaign_rules as rules
from dialwave.domain.outcomes import REACHED
from dialwave.services import campaign_waiting
from dialwave.services import campaigns as campaign_service
from dialwave.store.db import Database
from dialwave.store.repositories import calls as call_repo


async def live(db: Database, campaign_id: str, now: datetime) -> dict[str, int]:
    """Calls in flight (handed to the carrier: dialing, ringing or talking), leads claimed and about to
    be dialed, and attempts started in the last minute."""
    async with db.read() as conn:
        live_calls = await call_repo.live_counts(conn, campaign_id)
        recent = await call_repo.recent_attempts(conn, campaign_id, now - timedelta(minutes=1))
    claimed = live_calls.pop("pending", 0)
    return {"in_flight": sum(live_calls.values()), "claimed": claimed, "attempts_last_minute": len(recent)}


async def per_minute(db: Database, org_id: str, campaign_id: str, now: datetime, minutes: int) -> list[dict[str, Any]]:
    """The last `minutes` minutes, oldest first: attempts started in each and their outcomes so far
    (a call still in flight counts as `in_flight`)."""
    await campaign_service.get_campaign(db, org_id, campaign_id)  # 404 for another organization's id
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    async with db.read() as conn:
        rows = await call_repo.recent_attempts(conn, campaign_id, start)
    buckets: list[Counter[str]] = [Counter() for _ in range(minutes)]
    for started_at, status, outcome in rows:
        index = int((started_at - start).total_seconds() // 60)
        if 0 <= index < minutes:
            buckets[index][outcome or ("in_flight" if status in call_repo.LIVE_CALL else status)] += 1
    return [
        {
            "minute": start + timedelta(minutes=i),
            "attempts": sum(bucket.values()),
            "answered": sum(n for outcome, n in bucket.items() if outcome in REACHED),  # a person answered
            "outcomes": dict(bucket),
        }
        for i, bucket in enumerate(buckets)
    ]


Snapshot = Callable[[], Awaitable[dict[str, Any]]]


async def changes(
    snapshot: Snapshot,
    *,
    poll_seconds: float,
    heartbeat_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """("campaign", state) first and whenever it changes (looked at every `poll_seconds`), ("heartbeat",
    {}) after `heartbeat_seconds` without a change; ends after the state of a finished campaign."""
    last: dict[str, Any] | None = None
    quiet = 0.0
    while True:
        state = await snapshot()
        if state != last:
            yield "campaign", state
            last, quiet = state, 0.0
            if state["status"] in rules.FINAL:
                return
        elif quiet >= heartbeat_seconds:
            yield "heartbeat", {}
            quiet = 0.0
        await sleep(poll_seconds)
        quiet += poll_seconds


def campaign_snapshot(
    db: Database, org_id: str, campaign_id: str, clock: Clock, render: Callable[[Any, Any], dict[str, Any]]
) -> Snapshot:
    """The campaign as GET answers it (`render(row, waiting)`), with `live` (calls in flight, attempts in
    the last minute)."""

    async def snapshot() -> dict[str, Any]:
        now = clock.now()
        row = await campaign_service.get_campaign(db, org_id, campaign_id)
        waiting = (await campaign_waiting.waiting(db, [row], now))[row["id"]]
        return {**render(row, waiting), "live": await live(db, campaign_id, now)}

    return snapshot
