"""The demo `make run` sets up (services/demo.py): whatever the hour and the day, its leads are where
calling is legal, so the engine dials within seconds; run again, it reuses what it made. On SQLite and
PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dialwave.services import demo
from dialwave.store.db import Database
from dialwave.store.tables import agents, campaigns, phone_numbers
from tests.rig import make_rig

pytestmark = pytest.mark.asyncio
SATURDAY = datetime(2026, 3, 7, tzinfo=UTC)


@pytest.mark.parametrize("hour", [0, 5, 11, 17, 22])
async def test_the_demo_dials_within_seconds_whatever_the_hour(db_url: str, db: Database, hour: int) -> None:
    now = SATURDAY + timedelta(hours=hour, minutes=37)
    async with make_rig(db_url, db, now) as rig:
        made = await demo.set_up(db, "demo", now)
        assert made.created and made.leads == 300 and made.zones
        rig.engine.invalidate(None, None)
        await rig.run(timedelta(seconds=30))
        calls = await rig.calls(made.campaign_id)
        started = [c for c in calls if c["started_at"] is not None]
        assert len(started) >= 10, (hour, made.zones)  # max_concurrency 10 at once
        assert all(c["started_at"] <= now + timedelta(seconds=30) for c in started)
        async with db.read() as conn:
            camp = (await conn.execute(sa.select(campaigns))).mappings().one()
        assert camp["status"] == "active" and camp["count_skipped"] == 0


async def test_running_it_again_reuses_the_demo(db_url: str, db: Database) -> None:
    now = SATURDAY + timedelta(hours=14)
    first = await demo.set_up(db, "demo", now)
    again = await demo.set_up(db, "demo", now + timedelta(minutes=1))
    assert not again.created and again.campaign_id == first.campaign_id and again.key != first.key
    async with db.write() as conn:
        await conn.execute(campaigns.update().values(status="completed"))
    third = await demo.set_up(db, "demo", now + timedelta(minutes=2))
    assert third.created and third.campaign_id != first.campaign_id
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(agents)) == 1
        assert await conn.scalar(sa.select(sa.func.count()).select_from(phone_numbers)) == 3
        assert await conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 2
