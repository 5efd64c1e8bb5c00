"""Campaign API on SQLite and PostgreSQL: create, validation paths, merge-patch, edit matrix, actions."""

from __future__ import annotations

from datetime import timedelta

from dialwave.clock import VirtualClock
from tests import helpers
from tests.conftest import Api


async def test_create_fills_defaults_and_counts(api: Api) -> None:
    cmp = await helpers.campaign(api, "Defaults")
    assert cmp["id"].startswith("cmp_")
    assert cmp["status"] == "draft"
    assert cmp["version"] == 1
    assert cmp["ring_timeout_seconds"] == 30
    assert cmp["retry"]["on"]["busy"]["interval_minutes"] == [30]
    assert cmp["counts"] == {k: 0 for k in cmp["counts"]}
    assert cmp["created_at"].endswith("Z")


async def test_validation_error_names_the_field_and_stores_nothing(api: Api) -> None:
    body = {
        "name": "Bad",
        "schedule": {"windows": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "13:00"}]},
    }
    response = await api.post("/v1/campaigns", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert "schedule.windows[1].end" in error["fields"]
    assert error["request_id"]
    listing = await api.ok("get", "/v1/campaigns")
    assert listing["data"] == []


async def test_pydantic_errors_use_paths_not_locs(api: Api) -> None:
    response = await api.post("/v1/campaigns", json={"name": "x", "pacing": {"max_concurrency": 0}})
    assert response.status_code == 422
    assert list(response.json()["error"]["fields"]) == ["pacing.max_concurrency"]


async def test_unknown_references_are_refused(api: Api) -> None:
    body = {"name": "Refs", "agent_id": "agt_nope", "caller_ids": [{"phone_number_id": "pn_nope"}]}
    fields = (await api.post("/v1/campaigns", json=body)).json()["error"]["fields"]
    assert set(fields) == {"agent_id", "caller_ids[0].phone_number_id"}


async def test_names_are_unique_per_organization(api: Api, other_api: Api) -> None:
    await helpers.campaign(api, "Same")
    response = await api.post("/v1/campaigns", json={"name": "Same"})
    assert response.status_code == 422 and "name" in response.json()["error"]["fields"]
    await helpers.campaign(other_api, "Same")  # another tenant may use it


async def test_template_variable_without_a_source_is_named(api: Api) -> None:
    agt = await helpers.agent(api, required_variables=["name"])
    body = {"name": "T", "agent_id": agt["id"], "agent_overrides": {"opening_message": "Hi {{name}} at {{company}}"}}
    response = await api.post("/v1/campaigns", json=body)
    assert response.status_code == 422
    message = response.json()["error"]["fields"]["agent_overrides.opening_message"]
    assert "company" in message and "dynamic_variables" in message
    body["dynamic_variables"] = {"company": "Acme"}
    await api.ok("post", "/v1/campaigns", 201, json=body)


async def test_patch_is_a_merge_patch(api: Api) -> None:
    cmp = await helpers.campaign(api, "Merge", description="d", schedule={"end_at": "2026-12-01T00:00:00Z"})
    url = f"/v1/campaigns/{cmp['id']}"
    out = await api.ok("patch", url, json={"pacing": {"max_concurrency": 7}, "description": None})
    assert out["pacing"]["max_concurrency"] == 7
    assert out["pacing"]["attempts_per_second"] == cmp["pacing"]["attempts_per_second"]
    assert out["description"] is None
    assert out["version"] == 2
    out = await api.ok("patch", url, json={"schedule": {"end_at": None}})
    assert out["schedule"]["end_at"] is None
    assert out["schedule"]["windows"] == cmp["schedule"]["windows"]


async def test_patch_failure_keeps_the_stored_campaign(api: Api) -> None:
    cmp = await helpers.campaign(api, "Keep")
    url = f"/v1/campaigns/{cmp['id']}"
    response = await api.patch(url, json={"name": "Renamed", "schedule": {"timezone": "Nowhere/Land"}})
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"schedule.timezone": "unknown IANA time zone 'Nowhere/Land'"}
    again = await api.ok("get", url)
    assert again["name"] == "Keep" and again["version"] == 1


async def test_status_cannot_be_patched(api: Api) -> None:
    cmp = await helpers.campaign(api, "S")
    response = await api.patch(f"/v1/campaigns/{cmp['id']}", json={"status": "active"})
    assert response.status_code == 422
    assert "/start" in response.json()["error"]["fields"]["status"]


async def test_if_match_guards_against_lost_updates(api: Api) -> None:
    cmp = await helpers.campaign(api, "V")
    url = f"/v1/campaigns/{cmp['id']}"
    await api.ok("patch", url, json={"description": "one"}, headers={"If-Match": '"1"'})
    stale = await api.patch(url, json={"description": "two"}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "VERSION_MISMATCH"
    assert (await api.ok("get", url))["description"] == "one"


async def test_start_refuses_an_unready_campaign_and_says_why(api: Api) -> None:
    cmp = await helpers.campaign(api, "Empty")
    response = await api.post(f"/v1/campaigns/{cmp['id']}/start")
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "no agent" in message and "no caller id" in message and "no leads" in message


async def test_an_active_campaign_takes_pacing_and_window_edits_but_needs_a_pause_for_a_timezone_change(
    api: Api,
) -> None:
    cmp = await helpers.campaign(api, "Live", ready=True)
    url = f"/v1/campaigns/{cmp['id']}"
    await api.ok("post", f"{url}/start")
    live = await api.ok(
        "patch",
        url,
        json={"pacing": {"max_concurrency": 3}, "schedule": {"windows": [{"start": "10:00", "end": "11:00"}]}},
    )
    assert live["pacing"]["max_concurrency"] == 3
    blocked = await api.patch(url, json={"schedule": {"timezone": "Europe/Paris"}})
    assert blocked.status_code == 409
    error = blocked.json()["error"]
    assert error["code"] == "CAMPAIGN_ACTIVE" and "pause the campaign first" in error["message"]
    await api.ok("post", f"{url}/pause")
    paused = await api.ok("patch", url, json={"schedule": {"timezone": "Europe/Paris"}})
    assert paused["schedule"]["timezone"] == "Europe/Paris"
    resumed = await api.ok("post", f"{url}/resume")
    assert resumed["status"] == "active"


async def test_starting_with_a_future_start_at_schedules_the_campaign(api: Api, clock: VirtualClock) -> None:
    start_at = (clock.now() + timedelta(days=1)).isoformat()
    cmp = await helpers.campaign(api, "Later", ready=True, schedule={"start_at": start_at})
    out = await api.ok("post", f"/v1/campaigns/{cmp['id']}/start")
    assert out["status"] == "scheduled"
    assert out["agent_version_used"] == 1


async def test_cancel_cancels_open_leads_and_freezes(api: Api) -> None:
    cmp = await helpers.campaign(api, "Stop", ready=True)
    url = f"/v1/campaigns/{cmp['id']}"
    out = await api.ok("post", f"{url}/cancel")
    assert out["status"] == "cancelled"
    assert out["counts"]["queued"] == 0 and out["counts"]["cancelled"] == 1
    assert (await api.patch(url, json={"pacing": {"max_concurrency": 2}})).status_code == 409
    assert (await api.ok("patch", url, json={"name": "Stopped"}))["name"] == "Stopped"
    again = await api.post(f"{url}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_TRANSITION"


async def test_an_active_campaign_cannot_be_deleted_until_paused(api: Api) -> None:
    cmp = await helpers.campaign(api, "Del", ready=True)
    url = f"/v1/campaigns/{cmp['id']}"
    await api.ok("post", f"{url}/start")
    response = await api.delete(url)
    assert response.status_code == 409 and response.json()["error"]["code"] == "CAMPAIGN_ACTIVE"
    await api.ok("post", f"{url}/pause")
    assert (await api.delete(url)).status_code == 204
    assert (await api.get(url)).status_code == 404


async def test_list_filters_and_paginates(api: Api) -> None:
    for i in range(5):
        await helpers.campaign(api, f"C{i}")
    first = await api.ok("get", "/v1/campaigns", params={"limit": 2})
    assert len(first["data"]) == 2 and first["next_cursor"]
    seen = [c["id"] for c in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await api.ok("get", "/v1/campaigns", params={"limit": 2, "cursor": cursor})
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    drafts = await api.ok("get", "/v1/campaigns", params={"status": "active"})
    assert drafts["data"] == []
    bad = await api.get("/v1/campaigns", params={"cursor": "!!!"})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["fields"]


async def test_idempotency_key_replays_and_refuses_other_bodies(api: Api) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = await api.post("/v1/campaigns", json={"name": "Once"}, headers=headers)
    second = await api.post("/v1/campaigns", json={"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    other = await api.post("/v1/campaigns", json={"name": "Twice"}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]["fields"]
    assert len((await api.ok("get", "/v1/campaigns"))["data"]) == 1


async def test_agents_are_versioned_and_pinnable(api: Api) -> None:
    agt = await helpers.agent(api)
    updated = await api.ok("patch", f"/v1/agents/{agt['id']}", json={"opening_message": "Hello {{name}}"})
    assert updated["version"] == 2
    versions = await api.ok("get", f"/v1/agents/{agt['id']}/versions")
    assert [v["version"] for v in versions["data"]] == [1, 2]
    assert versions["data"][0]["snapshot"]["opening_message"] == "Hi {{name}}!"
    bad = await api.post(
        "/v1/campaigns",
        json={"name": "Pin", "agent_id": agt["id"], "agent_version": 9, "dynamic_variables": {"company": "x"}},
    )
    assert bad.status_code == 422 and "agent_version" in bad.json()["error"]["fields"]
    in_use = await helpers.campaign(api, "Pin", agent_id=agt["id"], agent_version=1, dynamic_variables={"company": "x"})
    assert in_use["agent_version"] == 1
    refused = await api.delete(f"/v1/agents/{agt['id']}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "AGENT_IN_USE"


async def test_phone_number_secrets_are_write_only(api: Api) -> None:
    sip = {"trunk_uri": "sip:trunk.example.com:5060", "username": "u", "password": "p4ss"}
    pn = await helpers.number(api, "+14155550111", provider="sip", sip=sip)
    assert "password" not in pn["sip"] and pn["sip"]["password_set"] is True
    updated = await api.ok("patch", f"/v1/phone-numbers/{pn['id']}", json={"sip": {**sip, "password": None}})
    assert updated["sip"]["password_set"] is True
    dup = await api.post("/v1/phone-numbers", json={"number": "+1 415 555 0111"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "NUMBER_EXISTS"
    missing = await api.post("/v1/phone-numbers", json={"number": "+14155550112", "provider": "twilio"})
    assert missing.status_code == 422 and "twilio" in missing.json()["error"]["fields"]


async def test_routes_need_a_valid_key_and_a_read_only_key_cannot_write(api: Api, http, db) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_api

    assert (await http.get("/v1/campaigns")).status_code == 401
    bad = await http.get("/v1/campaigns", headers={"X-API-Key": "dw_live_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "unauthorized"
    assert (await http.get("/v1/campaigns", headers={"X-API-Key": api.key})).status_code == 200
    reader = await make_api(http, db, "acme", ("read",))
    assert (await reader.get("/v1/campaigns")).status_code == 200
    forbidden = await reader.post("/v1/campaigns", json={"name": "nope"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "forbidden"
    assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_empty_agent_id_is_a_validation_error(api: Api) -> None:
    # found by schemathesis: "" once slipped past the reference check into the foreign key
    response = await api.post("/v1/campaigns", json={"name": "x", "agent_id": ""})
    assert response.status_code == 422 and "agent_id" in response.json()["error"]["fields"]
