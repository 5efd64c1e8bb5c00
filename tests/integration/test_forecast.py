"""POST /v1/campaigns/{id}/forecast: the real engine on a virtual clock over the campaign's remaining
leads. Forecast at 20 % done, then let the campaign finish: the forecast completion is within 10 % of
the actual remaining time. "What if" changes, refusals. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.store.db import Database
from tests.conftest import make_api
from tests.rig import Rig, make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York
MIX = {"answered": 0.45, "busy": 0.2, "no_answer": 0.25, "voicemail": 0.05, "failed": 0.05}
RETRY = {
    "on": {
        "busy": {"max_retries": 2, "interval_minutes": [10, 30]},
        "no_answer": {"max_retries": 1, "interval_minutes": [20]},
    }
}


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def started(rig: Rig, leads: int, **number: Any) -> str:
    numbers = [f"+1212555{3000 + i:04d}" for i in range(leads)]
    return await rig.campaign(
        numbers,
        callers=[await rig.number(**number)],
        pacing={"max_concurrency": 4, "attempts_per_second": 1},
        retry=RETRY,
        schedule={"timezone": "America/New_York", "windows": [{"start": "09:00", "end": "17:00"}]},
    )


async def done_share(rig: Rig, cid: str) -> float:
    counts = (await rig.get(cid))["counts"]
    return (counts["completed"] + counts["failed"] + counts["skipped"]) / counts["total"]


async def test_a_forecast_at_20_percent_is_within_10_percent_of_the_actual_end(db_url: str, db: Database) -> None:
    sim = model(outcomes=MIX, ring_seconds=[3, 15], talk_seconds=[20, 120], seed=7)
    async with make_rig(db_url, db, NOON, sim) as rig:
        cid = await started(rig, 300)
        while await done_share(rig, cid) < 0.2:
            await rig.run(timedelta(minutes=2))
        at = rig.clock.now()
        answer = await rig.api.ok("post", f"/v1/campaigns/{cid}/forecast")
        assert answer["basis"]["outcome_mix"] == "observed" and answer["basis"]["observed_calls"] >= 50
        calls_before = len(await rig.calls(cid))
        await rig.until_idle()
        camp = await rig.get(cid)
        assert camp["status"] == "completed"
        actual, forecast = when(camp["completed_at"]), when(answer["completes_at"])
        error = abs((forecast - actual).total_seconds()) / (actual - at).total_seconds()
        print(f"forecast at {at}: completes {forecast}, actual {actual}, error {error:.1%}")
        assert error <= 0.10, (at, forecast, actual, error)
        actual_attempts = len(await rig.calls(cid)) - calls_before
        assert abs(answer["attempts"] - actual_attempts) <= 0.15 * actual_attempts, (
            answer["attempts"],
            actual_attempts,
        )
        assert sum(h["attempts"] for h in answer["hourly"]) == answer["attempts"] == sum(answer["outcomes"].values())


async def test_what_if_and_refusals(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes=MIX, seed=3)) as rig:
        cid = await started(rig, 120, simulated={"outcomes": MIX, "seed": 3})
        await rig.run(timedelta(minutes=3))
        base: dict[str, Any] = await rig.api.ok("post", f"/v1/campaigns/{cid}/forecast", json={})
        assert base["basis"]["outcome_mix"] == "model"  # too few calls ended yet: the numbers' model
        faster = await rig.api.ok(
            "post", f"/v1/campaigns/{cid}/forecast", json={"changes": {"pacing": {"max_concurrency": 12}}}
        )
        assert when(faster["completes_at"]) < when(base["completes_at"])
        assert (await rig.get(cid))["pacing"]["max_concurrency"] == 4  # nothing saved
        bad = await rig.api.post(f"/v1/campaigns/{cid}/forecast", json={"changes": {"pacing": {"max_concurrency": 0}}})
        assert bad.status_code == 422 and "pacing.max_concurrency" in bad.json()["error"]["fields"]
        reader = await make_api(rig.api.client, db, "readers", ("read",))
        assert (await reader.post(f"/v1/campaigns/{cid}/forecast")).status_code == 404  # another organization
        await rig.api.ok("post", f"/v1/campaigns/{cid}/cancel")
        finished = await rig.api.post(f"/v1/campaigns/{cid}/forecast")
        assert finished.status_code == 409 and finished.json()["error"]["code"] == "CAMPAIGN_FINISHED"
