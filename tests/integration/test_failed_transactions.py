"""A transaction of the engine fails (the database went away, or its answer to COMMIT never came): what
the engine had decided in memory is neither lost nor applied twice. The refresh puts back the leads it
released; a claim whose commit failed gives its leads back instead of dialing leads the database may not
have claimed (engine/dispatcher.py `_write`, engine/write_buffer.py `put_back`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.engine import dispatcher
from dialwave.store.db import Database
from tests.rig import Rig, make_rig, model

NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
NUMBERS = [f"+1212555{3100 + i:04d}" for i in range(8)]


def fail_writes(rig: Rig, when: Any) -> list[bool]:
    """The engine's next write transaction for which `when()` is true at its end is rolled back and
    raises (once); returns the list that records it."""
    real, failed = rig.engine.db.write, []

    @contextlib.asynccontextmanager
    async def write() -> AsyncIterator[Any]:
        async with real() as conn:
            yield conn
            if not failed and when():
                failed.append(True)
                raise ConnectionResetError("the database went away before the COMMIT")

    rig.engine.db.write = write  # type: ignore[method-assign]
    return failed


async def finished_cleanly(rig: Rig, cid: str) -> None:
    await rig.until_idle()
    camp = await rig.get(cid)
    assert camp["status"] == "completed", camp["counts"]
    await rig.counts_check(cid)
    calls = await rig.calls(cid)
    assert all(c["status"] == "ended" for c in calls)
    assert len({(c["lead_id"], c["attempt"]) for c in calls}) == len(calls)
    assert len(calls) == rig.carrier.originated  # every dial has its call record
    assert {c["to_number"] for c in calls} == set(NUMBERS)


async def test_a_refresh_that_failed_after_releasing_leads_releases_them_again(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0}, talk_seconds=[30, 30])) as rig:
        cid = await rig.campaign(NUMBERS, retry={"max_attempts": 1}, pacing={"max_concurrency": 1})
        await rig.run(timedelta(seconds=5))
        engine = rig.engine
        held = engine.campaigns[cid].held
        assert held > 0  # claimed leads waiting for the one line
        engine.invalidate(campaign_id=cid)  # an edit: the refresh releases them, then reads the campaign again
        failed = fail_writes(rig, lambda: True)
        with pytest.raises(ConnectionResetError):
            await engine._refresh(rig.clock.now())
        assert failed and len(engine.writes.leads) >= held  # the releases wait for the next commit
        await finished_cleanly(rig, cid)


async def test_a_claim_whose_commit_failed_dials_none_of_its_leads(
    db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed: list[int] = []
    real_claim = dispatcher.claim

    async def claim(*args: Any, **kwargs: Any) -> Any:
        result = await real_claim(*args, **kwargs)
        claimed.append(len(result.reservations))
        return result

    monkeypatch.setattr(dispatcher, "claim", claim)
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0}, talk_seconds=[30, 30])) as rig:
        failed = fail_writes(rig, lambda: any(claimed))
        cid = await rig.campaign(NUMBERS, retry={"max_attempts": 1}, pacing={"max_concurrency": 2})
        with pytest.raises(ConnectionResetError):
            await rig.run(timedelta(seconds=5))
        assert failed
        await finished_cleanly(rig, cid)
