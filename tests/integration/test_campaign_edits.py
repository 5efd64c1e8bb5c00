"""Edits take effect: a widened schedule brings waiting leads forward (never before their retry
interval), a partial retry rule means the same on create and update, past schedule times are refused,
and leads released by an edit are dialed again. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.store.db import Database
from tests import helpers
from tests.conftest import Api
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NY_NOON = datetime(2026, 3, 2, 17, 57, tzinfo=UTC)  # Monday 12:57 in New York
NY = "America/New_York"
EVENING = {"timezone": NY, "windows": [{"start": "20:00", "end": "21:00"}]}
DAYTIME = [{"start": "09:00", "end": "21:00"}]
NUMBERS = [f"+1212555{3000 + i:04d}" for i in range(6)]


async def waiting_until(rig: Any, cid: str) -> set[datetime]:
    return {lead["next_attempt_at"] for lead in await rig.leads(cid) if lead["status"] == "queued"}


@pytest.mark.parametrize("paused", [False, True], ids=["live", "while paused"])
async def test_widening_the_window_brings_waiting_leads_forward(db_url: str, db: Database, paused: bool) -> None:
    async with make_rig(db_url, db, NY_NOON, model(outcomes={"answered": 1.0}, talk_seconds=(5, 5))) as rig:
        cid = await rig.campaign(NUMBERS, schedule=EVENING, pacing={"max_concurrency": 10, "attempts_per_second": 5})
        await rig.run(timedelta(seconds=5))
        assert await waiting_until(rig, cid) == {datetime(2026, 3, 3, 1, 0, tzinfo=UTC)}  # 20:00 New York
        if paused:
            await rig.api.ok("post", f"/v1/campaigns/{cid}/pause")
        await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"schedule": {"windows": DAYTIME}})
        if paused:
            await rig.run(timedelta(minutes=5))
            await rig.api.ok("post", f"/v1/campaigns/{cid}/resume")
        resumed = rig.clock.now()
        await rig.run(timedelta(minutes=1))
        calls = await rig.calls(cid)
        assert len(calls) == len(NUMBERS)
        assert all(c["started_at"] < resumed + timedelta(seconds=10) for c in calls)


async def test_narrowing_the_window_does_not_bring_leads_forward(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NY_NOON, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(NUMBERS, schedule=EVENING)
        await rig.run(timedelta(seconds=5))
        narrow = [{"start": "20:30", "end": "21:00"}]
        await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"schedule": {"windows": narrow}})
        await rig.run(timedelta(minutes=10))
        assert await rig.calls(cid) == []


async def test_a_widening_never_brings_a_retry_before_its_interval(db_url: str, db: Database) -> None:
    number = NUMBERS[0]
    busy_once = model(scripted={number: ["busy", "answered"]}, ring_seconds=(1, 1))
    retry = {"max_attempts": 2, "on": {"busy": {"enabled": True, "max_retries": 1, "interval_minutes": [90]}}}
    two_windows = {"timezone": NY, "windows": [{"start": "12:00", "end": "13:00"}, {"start": "20:00", "end": "21:00"}]}
    async with make_rig(db_url, db, NY_NOON, busy_once) as rig:
        cid = await rig.campaign([number], schedule=two_windows, retry=retry)
        await rig.run(timedelta(minutes=1))
        (lead,) = await rig.leads(cid)
        assert lead["status"] == "retry_pending" and lead["next_attempt_at"] == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
        await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"schedule": {"windows": DAYTIME}})
        await rig.run(timedelta(hours=3))
        first, second = await rig.calls(cid)
        assert second["started_at"] - first["ended_at"] >= timedelta(minutes=90)  # the interval holds
        assert second["started_at"] < first["ended_at"] + timedelta(minutes=91)  # ... and no later than it needs


async def test_leads_released_by_an_edit_are_dialed_again(db_url: str, db: Database) -> None:
    """Claimed leads waiting for a free line go back to the queue when the campaign is edited; the engine
    must see them due again (a claim holds every lead of this small campaign)."""
    talk = model(outcomes={"answered": 1.0}, ring_seconds=(1, 1), talk_seconds=(60, 60))
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    async with make_rig(db_url, db, start, talk) as rig:
        cid = await rig.campaign(NUMBERS[:5], pacing={"max_concurrency": 1, "attempts_per_second": 5})
        await rig.run(timedelta(seconds=5))
        await rig.api.ok("patch", f"/v1/campaigns/{cid}", json={"pacing": {"attempts_per_second": 4}})
        await rig.run(timedelta(minutes=10))
        assert len(await rig.calls(cid)) == 5
        assert (await rig.get(cid))["status"] == "completed"


@pytest.mark.parametrize("outcome", ["failed", "busy", "no_conversion", "short_duration"])
async def test_a_partial_retry_rule_is_stored_alike_on_create_and_update(api: Api, outcome: str) -> None:
    partial = {"retry": {"on": {outcome: {"enabled": True}}}}
    created = await helpers.campaign(api, f"created-{outcome}", **partial)
    updated = await helpers.campaign(api, f"updated-{outcome}")
    patched = await api.ok("patch", f"/v1/campaigns/{updated['id']}", json=partial)
    assert created["retry"]["on"][outcome] == patched["retry"]["on"][outcome]
    assert created["retry"]["on"][outcome]["max_retries"] >= 1  # enabled means something is retried


async def test_an_enabled_rule_that_retries_nothing_is_refused(api: Api) -> None:
    cmp = await helpers.campaign(api, "zero")
    body = {"retry": {"on": {"busy": {"enabled": True, "max_retries": 0}}}}
    response = await api.patch(f"/v1/campaigns/{cmp['id']}", json=body)
    assert response.status_code == 422
    assert "retry.on.busy.max_retries" in response.json()["error"]["fields"]


async def test_a_past_end_at_is_refused_and_loses_nothing(api: Api) -> None:
    cmp = await helpers.campaign(api, "ends", ready=True)
    await api.ok("post", f"/v1/campaigns/{cmp['id']}/start")
    await api.ok("post", f"/v1/campaigns/{cmp['id']}/pause")
    past = "2020-01-01T00:00:00Z"
    response = await api.patch(f"/v1/campaigns/{cmp['id']}", json={"schedule": {"end_at": past}})
    assert response.status_code == 422 and "schedule.end_at" in response.json()["error"]["fields"]
    assert (await api.ok("post", f"/v1/campaigns/{cmp['id']}/resume"))["status"] == "active"


async def test_a_past_start_at_is_refused_before_the_campaign_starts(api: Api) -> None:
    past = "2020-01-01T00:00:00Z"
    response = await api.post("/v1/campaigns", json={"name": "early", "schedule": {"start_at": past}})
    assert response.status_code == 422 and "schedule.start_at" in response.json()["error"]["fields"]
    draft = await helpers.campaign(api, "draft")
    response = await api.patch(f"/v1/campaigns/{draft['id']}", json={"schedule": {"start_at": past}})
    assert response.status_code == 422 and "schedule.start_at" in response.json()["error"]["fields"]


async def test_a_template_variable_is_sourced_again_once_the_leads_lacking_it_are_gone(api: Api) -> None:
    agent = await helpers.agent(api, system_prompt="Call {{name}}.", opening_message="Hi {{name}}!")
    cmp = await helpers.campaign(api, "sources", agent_id=agent["id"])
    leads = [
        {"phone_number": "+12125550191", "variables": {"name": "Ada", "company": "Acme"}},
        {"phone_number": "+12125550192", "variables": {"name": "Lin"}},
    ]
    await api.ok("post", f"/v1/campaigns/{cmp['id']}/leads", json={"leads": leads})
    uses_company = {"agent_overrides": {"opening_message": "Hi {{name}} from {{company}}!"}}
    refused = await api.patch(f"/v1/campaigns/{cmp['id']}", json=uses_company)
    assert refused.status_code == 422 and "agent_overrides.opening_message" in refused.json()["error"]["fields"]
    lacking = await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads", params={"phone_number": "+12125550192"})
    await api.ok("delete", f"/v1/campaigns/{cmp['id']}/leads/{lacking['data'][0]['id']}", 204)
    accepted = await api.ok("patch", f"/v1/campaigns/{cmp['id']}", json=uses_company)
    assert accepted["agent_overrides"]["opening_message"] == "Hi {{name}} from {{company}}!"


async def test_a_leads_new_time_zone_brings_it_forward(db_url: str, db: Database) -> None:
    local_evening = {"timezone": NY, "windows": [{"start": "20:00", "end": "21:00"}], "recipient_local_time": True}
    number = NUMBERS[0]
    async with make_rig(db_url, db, NY_NOON, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign([number], schedule=local_evening, lead_extra={number: {"timezone": NY}})
        await rig.run(timedelta(seconds=5))
        (lead,) = await rig.leads(cid)
        assert lead["next_attempt_at"] == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 20:00 in New York
        url = f"/v1/campaigns/{cid}/leads/{lead['id']}"
        moved = await rig.api.ok("patch", url, json={"timezone": "Europe/Berlin", "variables": {"team": "EU"}})
        assert moved["timezone"] == "Europe/Berlin" and moved["variables"] == {"team": "EU"}
        await rig.run(timedelta(hours=2))
        [call] = await rig.calls(cid)
        assert call["started_at"] == datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 20:00 in Berlin, 6 h earlier


async def test_a_lead_patch_keeps_what_the_templates_need_and_waits_for_no_call(api: Api) -> None:
    agent = await helpers.agent(api)  # its templates need name (company comes from the campaign)
    cmp = await helpers.campaign(api, "patch leads", agent_id=agent["id"], dynamic_variables={"company": "Acme"})
    lead = {"phone_number": "+12125550211", "variables": {"name": "Ada"}}
    await api.ok("post", f"/v1/campaigns/{cmp['id']}/leads", json={"leads": [lead]})
    [row] = (await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads"))["data"]
    url = f"/v1/campaigns/{cmp['id']}/leads/{row['id']}"
    dropped = await api.patch(url, json={"variables": {"name": None}})
    assert dropped.status_code == 422 and "variables" in dropped.json()["error"]["fields"]
    bad_zone = await api.patch(url, json={"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422 and "timezone" in bad_zone.json()["error"]["fields"]
    changed = await api.ok("patch", url, json={"agent_overrides": {"opening_message": "Hello {{name}}"}})
    assert changed["agent_overrides"] == {"opening_message": "Hello {{name}}"}
    assert (await api.ok("get", url))["variables"] == {"name": "Ada"}  # nothing lost by the refusals
