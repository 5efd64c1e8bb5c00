"""Several dispatchers on one PostgreSQL: each campaign has one owner; a dead worker's campaigns are
taken over and their calls in flight reconciled, never redialed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialwave.engine.dispatcher import Engine
from dialwave.engine.settings import EngineSettings
from dialwave.store.db import Database
from tests.rig import make_rig, model, step


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite runs one dispatcher by design
async def test_two_workers_split_campaigns_and_one_takes_over_when_the_other_dies(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(90, 90))) as rig:
        settings = EngineSettings.virtual(refresh_every=timedelta(seconds=1), shared_caps=True)
        first = Engine(db, {"simulated": rig.carrier.view()}, settings)
        second = Engine(db, {"simulated": rig.carrier.view()}, settings)
        pacing = {"max_concurrency": 3, "attempts_per_second": 1}
        a = await rig.campaign([f"+1212555{1000 + i:04d}" for i in range(12)], pacing=pacing)
        await first.tick(rig.clock.now())
        b = await rig.campaign([f"+1212555{2000 + i:04d}" for i in range(12)], pacing=pacing)
        await second.tick(rig.clock.now())
        assert first.leases.owned == {a} and second.leases.owned == {b}  # one owner per campaign
        for _ in range(40):
            await step([first, second], rig.clock, rig.carrier)
        assert {c["campaign_id"] for c in await rig.calls() if c["caller_id"]} == {a, b}
        in_flight = [c for c in await rig.calls(a) if c["status"] != "ended"]
        assert first.calls.live and in_flight, "the first worker should have calls in flight"
        await first.close()  # it dies: its session ends, its lease goes with it
        for i in range(2000):
            await step([second], rig.clock, rig.carrier)
            if i % 50 == 49 and {(await rig.get(c))["status"] for c in (a, b)} == {"completed"}:
                break
        assert second.leases.owned <= {a, b}
        for cid in (a, b):
            assert (await rig.get(cid))["status"] == "completed"
            calls = await rig.calls(cid)
            assert all(c["status"] == "ended" for c in calls)
            for lead in await rig.leads(cid):
                mine = sorted((c for c in calls if c["lead_id"] == lead["id"]), key=lambda c: c["attempt"])
                assert [c["attempt"] for c in mine] == list(range(1, len(mine) + 1))
                # one answered dial; intents the dead worker recorded but never placed are provider_error
                assert [c["outcome"] for c in mine][-1] == "answered"
                assert all(c["outcome"] == "provider_error" for c in mine[:-1])
            await rig.counts_check(cid)
        assert rig.carrier.originated == 24  # every lead reached the carrier exactly once
        await second.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_idle_workers_split_the_campaigns_started_later(db_url: str, db: Database) -> None:
    """Two workers that had nothing to do when the campaigns started: each takes its fair share, not the
    first one to see them all of them."""
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        settings = EngineSettings.virtual(refresh_every=timedelta(seconds=1), shared_caps=True)
        first = Engine(db, {"simulated": rig.carrier.view()}, settings)
        second = Engine(db, {"simulated": rig.carrier.view()}, settings)
        try:
            await first.tick(rig.clock.now())
            await second.tick(rig.clock.now())
            for k in range(4):
                await rig.campaign([f"+1212555{1000 + 10 * k + i:04d}" for i in range(2)])
            rig.clock.advance(timedelta(seconds=1))
            await first.tick(rig.clock.now())
            await second.tick(rig.clock.now())
            assert (len(first.leases.owned), len(second.leases.owned)) == (2, 2)
        finally:
            await first.close()
            await second.close()
