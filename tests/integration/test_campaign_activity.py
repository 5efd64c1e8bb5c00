"""GET /v1/campaigns/{id}/activity: attempts per minute and their outcomes, as the calls table has them.
On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from dialwave.store.db import Database
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York


async def test_attempts_per_minute_match_the_calls(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 0.5, "busy": 0.5})) as rig:
        numbers = [f"+1212555{2000 + i:04d}" for i in range(40)]
        cid = await rig.campaign(numbers, pacing={"max_concurrency": 3, "attempts_per_second": 1})
        await rig.run(timedelta(minutes=4, seconds=30))
        answer = await rig.api.ok("get", f"/v1/campaigns/{cid}/activity", params={"minutes": 10})
        minutes = answer["data"]
        assert len(minutes) == 10 and minutes[-1]["minute"] == "2026-03-02T17:04:00Z"
        calls = [c for c in await rig.calls(cid) if c["started_at"] is not None]  # not claimed-only ones
        assert sum(m["attempts"] for m in minutes) == len(calls) > 0
        by_minute = Counter(c["started_at"].replace(second=0, microsecond=0) for c in calls)
        for m in minutes:
            at = datetime.fromisoformat(m["minute"].replace("Z", "+00:00"))
            assert m["attempts"] == by_minute.get(at, 0) == sum(m["outcomes"].values())
        outcomes = Counter(c["outcome"] or "in_flight" for c in calls)
        assert sum((Counter(m["outcomes"]) for m in minutes), Counter()) == outcomes
        assert sum(m["answered"] for m in minutes) == outcomes["answered"] + outcomes["no_conversion"]
        other = await rig.api.client.get(f"/v1/campaigns/{cid}/activity", headers={"Authorization": "Bearer x"})
        assert other.status_code == 401
