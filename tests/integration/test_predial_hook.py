"""The pre-dial hook, on SQLite and PostgreSQL: asked before each dial over real HTTP; a denial skips
the lead without an attempt; errors and timeouts fail closed (ask again later) or open, as configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialwave.store.db import Database
from dialwave.webhooks.signing import new_secret
from tests.receiver import ConsentService, free_port, serving
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ALLOWED, DENIED = "+12125556001", "+12125556002"


async def test_a_denied_number_is_skipped_without_an_attempt_and_requests_are_signed(db_url: str, db: Database) -> None:
    service = ConsentService(deny={DENIED: "no consent on file"}, secret=new_secret())
    async with (
        make_rig(db_url, db, START, model(seed=4), allow_loopback=True) as rig,
        serving(service, free_port()) as url,
    ):
        hook = {"url": url, "secret": service.secret, "timeout_ms": 2000}
        cid = await rig.campaign([ALLOWED, DENIED], pre_dial_hook=hook)
        await rig.until_idle()
        leads = {lead["phone_number"]: lead for lead in await rig.leads(cid)}
        assert leads[DENIED]["status"] == "skipped"
        assert leads[DENIED]["reason"] == "pre-dial hook: no consent on file"
        assert leads[DENIED]["attempts"] == 0
        calls = await rig.calls(cid)
        assert {c["to_number"] for c in calls} == {ALLOWED}
        asked = [q for q in service.asked if q["phone_number"] == ALLOWED]
        assert [q["attempt"] for q in asked] == [c["attempt"] for c in calls]  # asked before each dial
        assert [q["call_id"] for q in asked] == [c["id"] for c in calls]
        assert [q["attempt"] for q in service.asked if q["phone_number"] == DENIED] == [1]
        assert service.verified == len(service.asked)  # every question verified by standardwebhooks
        assert all(q["campaign_id"] == cid for q in service.asked)
        camp = await rig.get(cid)
        assert camp["status"] == "completed" and camp["counts"]["skipped"] == 1
        await rig.counts_check(cid)


async def test_an_unreachable_hook_fails_closed_then_open_when_configured(db_url: str, db: Database) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    async with make_rig(db_url, db, START, model(seed=4), allow_loopback=True) as rig:
        cid = await rig.campaign([ALLOWED], pre_dial_hook={"url": dead, "on_error": "deny"})
        await rig.run(timedelta(minutes=12))
        [lead] = await rig.leads(cid)
        assert await rig.calls(cid) == []
        assert lead["status"] == "queued" and lead["attempts"] == 0
        assert lead["reason"].startswith("pre-dial hook: ") and lead["next_attempt_at"] > rig.clock.now()
        await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"pre_dial_hook": {"on_error": "allow"}})
        await rig.until_idle()
        assert {c["to_number"] for c in await rig.calls(cid)} == {ALLOWED}


async def test_a_hook_slower_than_its_timeout_counts_as_an_error(db_url: str, db: Database) -> None:
    service = ConsentService(slow={ALLOWED}, delay=1.0)
    async with (
        make_rig(db_url, db, START, model(seed=4), allow_loopback=True) as rig,
        serving(service, free_port()) as url,
    ):
        cid = await rig.campaign([ALLOWED], pre_dial_hook={"url": url, "timeout_ms": 200})
        await rig.run(timedelta(minutes=1))
        [lead] = await rig.leads(cid)
        assert lead["reason"] == "pre-dial hook: no answer within 200 ms"
        assert await rig.calls(cid) == []


async def test_hook_urls_pass_the_ssrf_guard(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START) as rig:
        response = await rig.api.post(
            "/v1/campaigns", json={"name": "h", "pre_dial_hook": {"url": "https://169.254.169.254/"}}
        )
        assert response.status_code == 422
        assert "metadata" in response.json()["error"]["fields"]["pre_dial_hook.url"]
