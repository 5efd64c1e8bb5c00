"""A campaign that dials nothing says when it next dials and why not before (legal hours, its window,
its start, a retry interval), not only lead by lead. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialwave.store.db import Database
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NY = "America/New_York"
DAWN = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # Monday 06:00 in New York


async def test_before_legal_hours_the_campaign_names_the_legal_opening(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, DAWN, model()) as rig:
        cid = await rig.campaign(
            ["+12125550181"], schedule={"timezone": NY, "windows": [{"start": "00:00", "end": "24:00"}]}
        )
        await rig.run(timedelta(seconds=5))
        camp = await rig.get(cid)
        assert camp["next_dial_at"] == "2026-03-02T13:00:00Z"  # 08:00 in New York
        assert camp["waiting_reason"] == "legal hours (US): next opening Mon 08:00 America/New_York"


async def test_outside_its_window_the_campaign_names_the_window_opening(db_url: str, db: Database) -> None:
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    async with make_rig(db_url, db, noon, model()) as rig:
        evening = {"timezone": NY, "windows": [{"start": "20:00", "end": "21:00"}]}
        cid = await rig.campaign(["+12125550182"], schedule=evening)
        await rig.run(timedelta(seconds=5))
        camp = await rig.get(cid)
        assert camp["next_dial_at"] == "2026-03-03T01:00:00Z"
        assert camp["waiting_reason"] == "calling window: next opening Mon 20:00 America/New_York"


async def test_a_scheduled_campaign_names_its_start(db_url: str, db: Database) -> None:
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    async with make_rig(db_url, db, noon, model()) as rig:
        start = "2026-03-03T15:00:00Z"
        cid = await rig.campaign(
            ["+12125550183"], schedule={"start_at": start, "windows": [{"start": "00:00", "end": "24:00"}]}
        )
        camp = await rig.get(cid)
        assert camp["status"] == "scheduled" and camp["next_dial_at"] == start
        assert camp["waiting_reason"] == "scheduled: starts at 2026-03-03 15:00 UTC"


async def test_a_campaign_dialing_or_due_gives_no_reason(db_url: str, db: Database) -> None:
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    talk = model(outcomes={"answered": 1.0}, talk_seconds=(600, 600))
    async with make_rig(db_url, db, noon, talk) as rig:
        cid = await rig.campaign(["+12125550184", "+12125550185"], pacing={"max_concurrency": 1})
        await rig.run(timedelta(seconds=30))
        camp = await rig.get(cid)
        assert camp["counts"]["in_progress"] >= 1  # one call up, one lead claimed for the next line
        assert camp["next_dial_at"] is None and camp["waiting_reason"] is None


async def test_resuming_a_campaign_whose_last_calls_ended_while_paused_completes_it(db_url: str, db: Database) -> None:
    """Paused with its last call in flight, which then ends: resume is accepted (the campaign had leads,
    none is left) and the engine completes it; it is not stuck paused behind "no leads to dial"."""
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    async with make_rig(db_url, db, noon, model(outcomes={"answered": 1.0}, talk_seconds=[60, 60])) as rig:
        cid = await rig.campaign(["+12125550183"], retry={"max_attempts": 1})
        await rig.run(timedelta(seconds=5))
        assert (await rig.get(cid))["counts"]["in_progress"] == 1
        await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
        await rig.until_idle()
        paused = await rig.get(cid)
        assert paused["status"] == "paused" and paused["counts"]["completed"] == 1
        assert (await rig.api.ok("post", f"/v1/campaigns/{cid}/resume"))["status"] == "active"
        await rig.run(timedelta(seconds=5))
        assert (await rig.get(cid))["status"] == "completed"
