"""Campaign requests as five other voice-campaign vendors document them (HMSovereign, SigmaMind,
Sarvam, Kathan, Talkover), replayed in dialwave's native shape: each test quotes the vendor's request
and its documented effect, then maps it field by field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dialwave.clock import VirtualClock
from dialwave.domain.templates import render
from tests import helpers
from tests.conftest import Api


async def _csv(api: Api, cid: str, text: str) -> dict[str, Any]:
    return dict(
        await api.ok(
            "post", f"/v1/campaigns/{cid}/leads/import", content=text.encode(), headers={"Content-Type": "text/csv"}
        )
    )


async def test_hmsovereign_a_prompt_template_is_refused_until_leads_supply_its_variables(api: Api) -> None:
    # PATCH /api/v1/campaigns/{id} {"system_message_template": "You are calling {{name}} from {{company}}. ...",
    #   "schedule_start_time": "09:00:00", "schedule_end_time": "17:00:00", "timezone": "Europe/Amsterdam"}
    template = "You are calling {{name}} from {{company}}. Convince them to schedule a demo."
    agt = await helpers.agent(api, system_prompt="", opening_message="", required_variables=[])
    cmp = await helpers.campaign(api, "Q1 Sales Outreach", agent_id=agt["id"])
    url = f"/v1/campaigns/{cmp['id']}"
    patch = {
        "agent_overrides": {"system_prompt": template},
        "schedule": {"windows": [{"start": "09:00", "end": "17:00"}], "timezone": "Europe/Amsterdam"},
    }
    refused = await api.patch(url, json=patch)  # no lead, default or requirement supplies the variables yet
    assert refused.status_code == 422
    assert "{{name}}" in refused.json()["error"]["fields"]["agent_overrides.system_prompt"]
    await _csv(api, cmp["id"], "phone,name,company\n+31201234567,Ada,Acme\n+31201234568,Bob,Globex\n")
    updated = await api.ok("patch", url, json=patch)  # now every lead carries name and company
    assert updated["schedule"]["timezone"] == "Europe/Amsterdam"
    assert updated["counts"]["total"] == 2  # HMSovereign's total_leads
    lead = (await api.ok("get", f"{url}/leads"))["data"][0]
    rendered = render(updated["agent_overrides"]["system_prompt"], lead["variables"])
    assert (
        rendered == f"You are calling {lead['variables']['name']} from {lead['variables']['company']}. "
        "Convince them to schedule a demo."
    )
    missing = await _csv(api, cmp["id"], "phone,name\n+31201234569,Cy\n")
    assert missing["errors"] == ["Row 1: missing required variable 'company'"]


async def test_sigmamind_rows_missing_a_variable_are_reported_until_a_default_supplies_it(
    api: Api, clock: VirtualClock
) -> None:
    # campaignName, sipPhoneNumber, agentId, concurrentCalls: 5, dynamicVariables: {customer_name: Michael},
    # isScheduled + scheduledDate/Time/Timezone; errors: ["Row 3: missing required variable 'customer_name'",
    # "Row 7: invalid phone number '+1234'"]
    agt = await helpers.agent(
        api, system_prompt="", opening_message="Hi {{customer_name}}", required_variables=["customer_name"]
    )
    pn = await helpers.number(api, "+14155552671")
    cmp = await helpers.campaign(
        api,
        "Q4 Outreach Campaign",
        agent_id=agt["id"],
        caller_ids=[{"phone_number_id": pn["id"]}],
        pacing={"max_concurrency": 5},
    )
    rows = [
        "+14155550101,Ann",
        "+14155550102,Ben",
        "+14155550103,",
        "+14155550104,Dee",
        "+14155550105,Eve",
        "+14155550106,Fox",
        "+1234,Gus",
    ]
    report = await _csv(api, cmp["id"], "phone_number,customer_name\n" + "\n".join(rows) + "\n")
    assert report["errors"] == [
        "Row 3: missing required variable 'customer_name'",
        "Row 7: invalid phone number '+1234'",
    ]
    url = f"/v1/campaigns/{cmp['id']}"
    start_at = (clock.now() + timedelta(days=2)).replace(microsecond=0)
    patched = await api.ok(
        "patch",
        url,
        json={
            "dynamic_variables": {"customer_name": "Michael"},
            "schedule": {"start_at": start_at.isoformat(), "timezone": "America/Los_Angeles"},
        },
    )
    again = await _csv(api, cmp["id"], "phone_number,customer_name\n+14155550103,\n")
    assert again["accepted"] == 1  # the default supplies customer_name now
    assert patched["pacing"]["max_concurrency"] == 5
    started = await api.ok("post", f"{url}/start")
    assert started["status"] == "scheduled"  # isScheduled: launched later, at start_at
    dup = await api.post("/v1/campaigns", json={"name": "Q4 Outreach Campaign"})
    assert dup.status_code == 422  # "Must be unique within your account"


SARVAM_APP_CONFIG = {
    "attempts_per_second": 250.05,
    "retry": {
        "max_attempts": 10,
        "on": {
            "busy": {"enabled": True},
            "failed": {"enabled": True},
            "no_answer": {"enabled": True},
            "short_duration": {"enabled": True, "threshold_seconds": 123},
            "provider_error": {"enabled": True, "max_retries": 10, "interval_minutes": [6]},
            "internal_error": {"enabled": True, "max_retries": 3, "interval_minutes": [5]},
        },
    },
}


def sarvam_patch(pn_ids: list[str]) -> dict[str, Any]:
    return {
        "name": "Renamed campaign",
        "description": "Updated description",
        "pacing": {"attempts_per_second": SARVAM_APP_CONFIG["attempts_per_second"]},
        "caller_ids": [{"phone_number_id": pid, "weight": w} for pid, w in zip(pn_ids, (1, 3), strict=True)],
        "retry": SARVAM_APP_CONFIG["retry"],
        "webhook": {"url": "https://example.com/hook", "metadata": {"team": "growth"}},
        "schedule": {
            "end_at": "2027-11-07T05:31:56Z",
            "windows": [{"start": "10:00", "end": "18:00"}],
            "days_of_week": [1],
            "timezone": "Asia/Kolkata",
        },
    }


async def test_sarvam_scheduled_and_paused_campaigns_take_every_edit_active_ones_need_a_pause(
    api: Api, clock: VirtualClock
) -> None:
    # "Updates are only allowed when the campaign is in paused or scheduled status." In dialwave: draft,
    # scheduled and paused take every field; active takes most at once but a time-zone change needs a pause.
    start_at = (clock.now() + timedelta(hours=1)).isoformat()
    cmp = await helpers.campaign(api, "Sarvam", ready=True, schedule={"start_at": start_at})
    pn2 = await helpers.number(api, "+14155550199")
    pn_ids = [cmp["caller_ids"][0]["phone_number_id"], pn2["id"]]
    url = f"/v1/campaigns/{cmp['id']}"
    assert (await api.ok("post", f"{url}/start"))["status"] == "scheduled"
    scheduled = await api.ok("patch", url, json=sarvam_patch(pn_ids))
    assert scheduled["retry"]["on"]["short_duration"]["threshold_seconds"] == 123
    assert scheduled["retry"]["on"]["provider_error"]["interval_minutes"] == [6]
    assert scheduled["caller_ids"][1] == {"phone_number_id": pn2["id"], "weight": 3}
    clock.advance(timedelta(hours=2))
    await api.ok("post", f"{url}/pause")
    resumed = await api.ok("post", f"{url}/resume")
    assert resumed["status"] == "active"
    body = sarvam_patch(pn_ids)
    body["schedule"]["timezone"] = "Asia/Dubai"
    active = await api.patch(url, json=body)
    assert active.status_code == 409 and active.json()["error"]["code"] == "CAMPAIGN_ACTIVE"
    await api.ok("post", f"{url}/pause")
    assert (await api.ok("patch", url, json=body))["schedule"]["timezone"] == "Asia/Dubai"


async def test_kathan_leads_carry_their_own_variables_and_agent_overrides(api: Api) -> None:
    # "max_concurrency": 100 (1..200), "speech_settings": {...}, "opening_message_template",
    # "use_returning_greeting", "use_short_term_summaries", "short_term_summaries_limit",
    # "machine_detection_timeout_seconds": 31 (3..60), "recipients": [{phone_number, metadata, assistant_overrides}]
    cmp = await helpers.campaign(api, "Kathan", ready=True)
    url = f"/v1/campaigns/{cmp['id']}"
    updated = await api.ok(
        "patch",
        url,
        json={
            "pacing": {"max_concurrency": 100},
            "machine_detection": {"enabled": True, "timeout_seconds": 31},
            "agent_overrides": {
                "opening_message": "Hello {{name}}, calling about {{topic}}",
                "campaign_context": "Renewal drive",
                "speech_settings": {
                    "style": "neutral",
                    "responsiveness": "balanced",
                    "interruptions": "on",
                    "emotions": "natural",
                },
                "use_returning_greeting": True,
                "use_short_term_summaries": True,
                "short_term_summaries_limit": 3,
            },
            "dynamic_variables": {"company": "Acme", "topic": "your plan"},
        },
    )
    assert updated["agent_overrides"]["speech_settings"]["emotions"] == "natural"
    too_slow = await api.patch(url, json={"machine_detection": {"timeout_seconds": 61}})
    assert too_slow.status_code == 422 and "machine_detection.timeout_seconds" in too_slow.json()["error"]["fields"]
    recipients = [
        {
            "phone_number": "+14155550150",
            "variables": {"name": "Ada", "topic": "the upgrade"},
            "agent_overrides": {"opening_message": "Ada! Good to hear you again."},
        },
        {"phone_number": "+14155550151", "variables": {"name": "Bo"}},
    ]
    report = await api.ok("post", f"{url}/leads", json={"leads": recipients})
    assert report["accepted"] == 2
    leads = {lead["phone_number"]: lead for lead in (await api.ok("get", f"{url}/leads"))["data"]}
    assert leads["+14155550150"]["variables"]["topic"] == "the upgrade"
    assert leads["+14155550150"]["agent_overrides"]["opening_message"].startswith("Ada!")
    assert leads["+14155550151"]["agent_overrides"] is None


async def test_talkover_a_schedule_patch_changes_only_windows_and_timezone(api: Api) -> None:
    # PUT ... {"call_time_ranges": [{"start": "10:00", "end": "12:00"}, {"start": "14:00", "end": "16:00"}],
    #          "timezone": "America/Sao_Paulo"}  -> only those change.
    cmp = await helpers.campaign(
        api,
        "Sales Campaign Q1",
        ready=True,
        type="sales",
        schedule={"days_of_week": [1, 2, 3, 4, 5], "end_at": "2027-01-01T00:00:00Z"},
    )
    url = f"/v1/campaigns/{cmp['id']}"
    windows = [{"start": "10:00", "end": "12:00"}, {"start": "14:00", "end": "16:00"}]
    out = await api.ok("patch", url, json={"schedule": {"windows": windows, "timezone": "America/Sao_Paulo"}})
    assert out["schedule"]["windows"] == windows and out["schedule"]["timezone"] == "America/Sao_Paulo"
    assert out["schedule"]["days_of_week"] == [1, 2, 3, 4, 5]
    assert {k: v for k, v in out.items() if k not in ("schedule", "version", "updated_at", "counts")} == {
        k: v for k, v in cmp.items() if k not in ("schedule", "version", "updated_at", "counts")
    }
    # 422: "call_time_ranges.0.end must be a date after call_time_ranges.0.start"
    bad = await api.patch(url, json={"schedule": {"windows": [{"start": "10:00", "end": "10:00"}]}})
    assert "schedule.windows[0].end" in bad.json()["error"]["fields"]
    # "Switch to custom DNC list and tighten retry policy" (Talkover's +15551234567 is not a valid number:
    # dialwave refuses it and names the field).
    invalid = await api.patch(url, json={"dnc": {"sources": ["custom"], "custom_numbers": ["+15551234567"]}})
    assert "dnc.custom_numbers[0]" in invalid.json()["error"]["fields"]
    tightened = await api.ok(
        "patch",
        url,
        json={
            "retry": {"max_attempts": 3, "on": {"no_answer": {"interval_minutes": [720]}}},
            "cooldowns": {"after_success_hours": 168},
            "dnc": {
                "enabled": True,
                "sources": ["custom"],
                "custom_numbers": ["+14155550177"],
                "auto_add_on": ["completed"],
            },
        },
    )
    assert tightened["dnc"]["auto_add_on"] == ["completed"] and tightened["cooldowns"]["after_success_hours"] == 168
    # "Sending end_date: null clears a previously set end date."
    assert (await api.ok("patch", url, json={"schedule": {"end_at": None}}))["schedule"]["end_at"] is None
    # 409 "Cannot update schedule while there are queued calls. Pause the campaign first."
    await api.ok("post", f"{url}/start")
    conflict = await api.patch(url, json={"schedule": {"timezone": "America/New_York"}})
    assert conflict.status_code == 409 and "pause the campaign first" in conflict.json()["error"]["message"]
    # auto_complete: "Auto-transition to completed when all contacts are processed" (the engine acts on it)
    assert (await api.ok("patch", url, json={"auto_complete": False}))["auto_complete"] is False
