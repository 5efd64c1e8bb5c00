"""A worker's lease session ends while the worker lives (PostgreSQL restarted or failed over, the network
cut it; here: its backend terminated): the worker renews it and keeps its campaigns, or, when another
worker locked one meanwhile, forgets that one without a write and the new owner reconciles its calls.
Either way every guarantee holds (engine/leases.py, docs/deploy.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dialwave.engine.dispatcher import Engine
from dialwave.store.db import Database
from dialwave.store.tables import dial_slots
from tests.integration.test_shared_caps import peak, set_org_cap, workers
from tests.rig import Rig, make_rig, model, step

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])  # leases are PostgreSQL's
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


async def cut_lease_session(db: Database, engine: Engine) -> None:
    conn = engine.leases._conn
    assert conn is not None
    pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
    async with db.write() as admin:
        assert await admin.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def run_to_the_end(rig: Rig, engines: list[Engine], cid: str) -> None:
    for i in range(20_000):
        await step(engines, rig.clock, rig.carrier)
        if i % 100 == 99 and (await rig.get(cid))["status"] == "completed":
            return
    raise AssertionError("the campaign did not complete")


async def check(rig: Rig, db: Database, cid: str, org_cap: int, *, intents_left: bool = False) -> None:
    """`intents_left`: leads claimed by a worker that lost the campaign are in-doubt attempts for the new
    owner (ended as provider_error, never dialed), as a dead worker's are."""
    calls = await rig.calls()
    assert calls and all(c["status"] == "ended" and c["outcome"] for c in calls)
    assert len({(c["lead_id"], c["attempt"]) for c in calls}) == len(calls)
    dialed = [c for c in calls if c["outcome"] != "provider_error" or c["provider_call_id"]]
    assert len(dialed if intents_left else calls) == rig.carrier.originated
    assert max(peak(calls, lambda c: c["organization_id"]).values()) <= org_cap
    await rig.counts_check(cid)
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(dial_slots)) == 0


async def test_a_worker_whose_lease_session_ended_renews_it_and_keeps_its_campaign(db_url: str, db: Database) -> None:
    talk = model(outcomes={"answered": 0.7, "busy": 0.3}, talk_seconds=(20, 60))
    async with make_rig(db_url, db, START, talk) as rig:
        await set_org_cap(db, rig.api.org_id, 4)
        owner, other = workers(rig, 2)
        retry = {"on": {"busy": {"max_retries": 1, "interval_minutes": [1]}}}
        pacing = {"max_concurrency": 4, "attempts_per_second": 2}
        cid = await rig.campaign([f"+1212555{1000 + i:04d}" for i in range(10)], pacing=pacing, retry=retry)
        await owner.tick(rig.clock.now())
        for _ in range(30):
            await step([owner, other], rig.clock, rig.carrier)
        assert owner.leases.owned == {cid} and owner.calls.live
        await cut_lease_session(db, owner)
        await step([owner, other], rig.clock, rig.carrier)  # the owner ticks first: it renews, re-locks
        assert owner.leases.owned == {cid} and not other.leases.owned
        await run_to_the_end(rig, [owner, other], cid)
        await check(rig, db, cid, 4)
        for engine in (owner, other):
            await engine.close()


async def test_a_campaign_another_worker_took_meanwhile_is_forgotten_and_reconciled_by_it(
    db_url: str, db: Database
) -> None:
    talk = model(outcomes={"answered": 0.7, "busy": 0.3}, talk_seconds=(20, 60))
    async with make_rig(db_url, db, START, talk) as rig:
        await set_org_cap(db, rig.api.org_id, 4)
        owner, other = workers(rig, 2)
        retry = {"on": {o: {"max_retries": 2, "interval_minutes": [1]} for o in ("busy", "provider_error")}}
        pacing = {"max_concurrency": 4, "attempts_per_second": 2}
        cid = await rig.campaign([f"+1212555{2000 + i:04d}" for i in range(10)], pacing=pacing, retry=retry)
        await owner.tick(rig.clock.now())
        for _ in range(30):
            await step([owner, other], rig.clock, rig.carrier)
        in_flight = set(owner.calls.live)
        assert owner.leases.owned == {cid} and in_flight
        await cut_lease_session(db, owner)
        rig.clock.set(rig.clock.now() + timedelta(seconds=1))
        await other.tick(rig.clock.now())  # its refresh: the campaign has no owner, it takes it over
        assert other.leases.owned == {cid}
        assert in_flight <= set(other.calls.live)  # the calls the carrier still has: adopted
        await owner.tick(rig.clock.now())  # renews its session, cannot re-lock: forgets the campaign
        assert not owner.leases.owned and not owner.campaigns and not owner.calls.live
        await run_to_the_end(rig, [owner, other], cid)
        assert not owner.leases.owned  # taken by the other worker for good
        await check(rig, db, cid, 4, intents_left=True)
        for engine in (owner, other):
            await engine.close()


async def test_slots_to_free_survive_a_commit_that_failed(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, model(outcomes={"busy": 1.0})) as rig:
        (engine,) = workers(rig, 1)
        await rig.campaign([f"+1212555{3000 + i:04d}" for i in range(4)])
        while not engine.calls.live:
            await step([engine], rig.clock, rig.carrier)
        assert engine.shared is not None
        for _ in range(100):  # the carrier's events alone, no group commit: a call ended, its slot not freed yet
            at = rig.carrier.next_event_at()
            assert at is not None
            rig.clock.set(max(at, rig.clock.now()))
            await engine._run_due(rig.clock.now())
            if engine.shared.released:
                break
        freeing = list(engine.shared.released)
        assert freeing

        async def commit_lost(conn: sa.ext.asyncio.AsyncConnection) -> None:
            await engine._flush(conn, rig.clock.now())
            raise OSError("the database went away at the commit")

        with pytest.raises(OSError):
            await engine._write(rig.clock.now(), commit_lost)
        assert engine.shared.released == freeing
        await engine.write_buffer(rig.clock.now())
        async with db.read() as conn:
            held = set((await conn.execute(sa.select(dial_slots.c.call_id))).scalars())
        assert not held & set(freeing)
        await engine.close()


async def test_a_commit_whose_answer_was_lost_is_counted_from_the_leads(db_url: str, db: Database) -> None:
    """The database commits the calls' ends, then the connection dies before the answer: the engine
    writes the ends again, and the campaign's counters are set from its leads instead of being added to
    twice (counted twice, in_progress went negative and the campaign never completed)."""
    noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    async with make_rig(db_url, db, noon, model(outcomes={"answered": 1.0}, talk_seconds=[30, 30])) as rig:
        cid = await rig.campaign(["+12125550191", "+12125550192"], retry={"max_attempts": 1})
        await rig.run(timedelta(seconds=10))
        assert (await rig.get(cid))["counts"]["in_progress"] == 2
        real, lost = rig.engine.db.write, []

        @contextlib.asynccontextmanager
        async def commit_then_lose_the_answer() -> AsyncIterator[Any]:
            async with real() as conn:
                yield conn
            if not lost:
                lost.append(True)
                raise ConnectionResetError("the answer to COMMIT never came")

        rig.engine.db.write = commit_then_lose_the_answer  # type: ignore[method-assign]
        with pytest.raises(ConnectionResetError):
            await rig.run(timedelta(seconds=60))  # the calls end; the commit of their ends is the one cut
        rig.engine.db.write = real  # type: ignore[method-assign]
        await rig.until_idle()
        await rig.counts_check(cid)
        camp = await rig.get(cid)
        assert camp["counts"]["completed"] == 2 and camp["counts"]["in_progress"] == 0
        assert camp["status"] == "completed"
