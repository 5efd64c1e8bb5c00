"""Caps and pauses across dispatchers on one PostgreSQL (engine/slots.py): the organization's and a caller
id's concurrency hold in total, not per worker; a dead worker's slots are freed by its takeover; a pause
answered by a process whose engine does not own the campaign stops every worker's dials at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dialwave.engine.dispatcher import Engine
from dialwave.engine.settings import EngineSettings
from dialwave.store.db import Database
from dialwave.store.tables import dial_slots, organizations
from tests.rig import Rig, make_rig, model, step

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])  # SQLite runs one dispatcher by design


def peak(calls: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> Counter[str]:
    """The most calls in flight at any instant, per key (a call ending at t frees its line for one at t)."""
    moves = []
    for c in calls:
        if c["started_at"] is not None:
            moves += [(c["started_at"], 1, key(c)), (c["ended_at"], -1, key(c))]
    now: Counter[str] = Counter()
    top: Counter[str] = Counter()
    for _, sign, k in sorted(moves, key=lambda m: (m[0], m[1])):
        now[k] += sign
        top[k] = max(top[k], now[k])
    return top


def workers(rig: Rig, n: int, refresh: timedelta | None = timedelta(seconds=1), **more: Any) -> list[Engine]:
    settings = EngineSettings.virtual(refresh_every=refresh, shared_caps=True, **more)
    return [Engine(rig.db, {"simulated": rig.carrier.view()}, settings) for _ in range(n)]


async def set_org_cap(db: Database, org_id: str, cap: int) -> None:
    async with db.write() as conn:
        await conn.execute(organizations.update().where(organizations.c.id == org_id).values(max_concurrency=cap))


async def test_organization_and_caller_id_caps_hold_across_three_workers(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 0.6, "busy": 0.4}, talk_seconds=(5, 15))) as rig:
        await set_org_cap(db, rig.api.org_id, 5)
        narrow = await rig.number("+12125550101", max_concurrency=2)
        wide = await rig.number("+12125550102", max_concurrency=4)
        # no worker dies here: campaigns are re-read only when told
        engines = workers(rig, 3, refresh=None, cap_retry=timedelta(seconds=5))
        pacing = {"max_concurrency": 3, "attempts_per_second": 2}
        retry = {"on": {"busy": {"max_retries": 1, "interval_minutes": [1]}}}
        cids = []
        for i in range(6):
            callers = [narrow] if i % 2 else [narrow, wide]
            numbers = [f"+1212556{i}{j:03d}" for j in range(8)]
            cids.append(await rig.campaign(numbers, callers=callers, pacing=pacing, retry=retry))
            engines[i % 3].dirty = True  # it re-reads the campaigns now, and takes the new one
            await engines[i % 3].tick(rig.clock.now())
        assert all(len(e.leases.owned) == 2 for e in engines)  # the campaigns are spread over the workers
        for i in range(20_000):
            await step(engines, rig.clock, rig.carrier)
            if i % 200 == 199 and [(await rig.get(c))["status"] for c in cids] == ["completed"] * len(cids):
                break
        calls = await rig.calls()
        assert all(c["status"] == "ended" for c in calls)
        # never above the organization's cap; above one campaign's (3): the campaigns ran side by side
        assert 4 <= max(peak(calls, lambda c: c["organization_id"]).values()) <= 5
        by_caller = peak(calls, lambda c: c["caller_id"])
        assert by_caller[narrow] <= 2 and by_caller[wide] <= 4
        assert max(peak(calls, lambda c: c["campaign_id"]).values()) <= 3
        assert len({(c["lead_id"], c["attempt"]) for c in calls}) == len(calls) == rig.carrier.originated
        for cid in cids:
            assert (await rig.get(cid))["status"] == "completed"
            await rig.counts_check(cid)
        async with db.read() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(dial_slots)) == 0
        for engine in engines:
            await engine.close()


async def test_a_dead_workers_slots_are_freed_by_its_takeover(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0}, talk_seconds=(600, 600))) as rig:
        await set_org_cap(db, rig.api.org_id, 4)
        first, second = workers(rig, 2)
        pacing = {"max_concurrency": 4, "attempts_per_second": 2}
        await rig.campaign([f"+1212555{1000 + i:04d}" for i in range(6)], pacing=pacing)
        await first.tick(rig.clock.now())
        await rig.campaign([f"+1212555{2000 + i:04d}" for i in range(6)], pacing=pacing)
        await second.tick(rig.clock.now())
        for _ in range(30):
            await step([first, second], rig.clock, rig.carrier)
        assert len(first.calls.live) + len(second.calls.live) == 4  # the organization's cap, across both
        async with db.read() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(dial_slots)) == 4
        dead = set(first.calls.live)
        await first.close()  # it dies with calls in flight; the carrier keeps them up
        for _ in range(40):
            await step([second], rig.clock, rig.carrier)
        async with db.read() as conn:
            slots = set((await conn.execute(sa.select(dial_slots.c.call_id))).scalars())
        assert not slots & dead or slots & dead <= set(second.calls.live)  # freed, or adopted by the new owner
        assert len(slots) == len(second.calls.live) <= 4
        await second.close()


async def test_a_pause_through_another_process_stops_every_workers_dials_before_it_answers(
    db_url: str, db: Database
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"busy": 1.0}, ring_seconds=(1, 2))) as rig:
        # rig.engine (the API's own) never ticks: the campaign's owner hears of the pause only through the database
        (worker,) = workers(rig, 1)
        worker.settings = EngineSettings.virtual(refresh_every=timedelta(hours=1), shared_caps=True)  # no refresh
        pacing = {"max_concurrency": 5, "attempts_per_second": 5}
        cid = await rig.campaign([f"+1212555{3000 + i:04d}" for i in range(200)], pacing=pacing)
        for _ in range(20):
            await step([worker], rig.clock, rig.carrier)
        assert worker.campaigns[cid].held > 0  # leads claimed and waiting for their slots
        paused_at = rig.clock.now()
        await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
        for _ in range(50):
            await step([worker], rig.clock, rig.carrier)
        calls = [c for c in await rig.calls(cid) if c["started_at"] is not None]
        assert calls and max(c["started_at"] for c in calls) <= paused_at
        assert worker.campaigns[cid].held == 0  # its claimed leads went back to the queue
        await worker.flush_now(rig.clock.now())
        await rig.counts_check(cid)
        await worker.close()


async def test_a_number_put_on_the_dnc_list_through_another_process_is_not_dialed_by_a_worker(
    db_url: str, db: Database
) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, model(outcomes={"busy": 1.0}, ring_seconds=(1, 2))) as rig:
        (worker,) = workers(rig, 1)
        worker.settings = EngineSettings.virtual(refresh_every=timedelta(hours=1), shared_caps=True)  # no refresh
        pacing = {"max_concurrency": 2, "attempts_per_second": 1}
        cid = await rig.campaign([f"+1212555{4000 + i:04d}" for i in range(30)], pacing=pacing)
        for _ in range(5):
            await step([worker], rig.clock, rig.carrier)
        claimed = [r.lead.phone_number for r in worker.campaigns[cid].waiting]
        assert claimed, "leads claimed and waiting"
        await rig.api.ok("post", "/v1/dnc", json={"numbers": claimed})  # rig.engine hears of it, the worker not
        for _ in range(300):
            await step([worker], rig.clock, rig.carrier)
        dialed = {c["to_number"] for c in await rig.calls(cid) if c["started_at"] is not None}
        assert dialed and not dialed & set(claimed)
        assert {lead["status"] for lead in await rig.leads(cid) if lead["phone_number"] in claimed} == {"skipped"}
        await worker.close()
