"""Consent records and `compliance.require_consent`: a lead is dialed only with a valid consent of the
scope the campaign needs (checked at claim and again at dial time); a revoke, an opt-out or a DNC listing
ends it at once. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialwave.store.db import Database
from tests.conftest import Api
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def consent(number: str, scope: str = "ai_voice", **more: Any) -> dict[str, Any]:
    return {"phone_number": number, "scope": scope, "source": "web form", "captured_at": "2026-01-01T00:00:00Z", **more}


async def test_consents_are_recorded_listed_and_revoked(api: Api, other_api: Api) -> None:
    created = await api.ok("post", "/v1/consents", 201, json=consent("+1 (415) 555-0123", evidence="https://crm/1"))
    assert created["id"].startswith("cns_") and created["phone_number"] == "+14155550123" and created["valid"]
    listed = await api.ok("get", "/v1/consents", params={"phone_number": "+1 415 555 0123"})
    assert [c["id"] for c in listed["data"]] == [created["id"]]
    assert (await other_api.get(f"/v1/consents/{created['id']}")).status_code == 404
    revoked = await api.ok("post", f"/v1/consents/{created['id']}/revoke")
    assert revoked["revoked_channel"] == "api" and revoked["revoked_at"] and not revoked["valid"]
    for bad, field in [
        (consent("+14155550123", scope="robocalls"), "scope"),
        (consent("+14155550123", expires_at="2025-01-01T00:00:00Z"), "body"),
        (consent("not a number"), "phone_number"),
        (consent("+14155550123", captured_at="2027-01-01T00:00:00Z"), "captured_at"),
    ]:
        answer = await api.post("/v1/consents", json=bad)
        assert answer.status_code == 422, answer.text
        assert field in answer.json()["error"]["fields"] or field == "body", answer.text


async def test_a_consent_csv_stores_good_rows_and_reports_bad_ones(api: Api) -> None:
    csv = (
        "phone_number,scope,source,captured_at,evidence,expires_at\n"
        "+14155550123,ai_voice,form,2026-01-01T00:00:00Z,,\n"
        "+14155550124,marketing,call,2026-01-02T00:00:00Z,recording 12,2027-01-01T00:00:00Z\n"
        "nope,ai_voice,form,2026-01-01T00:00:00Z,,\n"
        "+14155550125,robocall,form,2026-01-01T00:00:00Z,,\n"
    )
    report = await api.ok("post", "/v1/consents/import", content=csv, headers={"Content-Type": "text/csv"})
    assert report["accepted"] == 2 and report["rejected"] == 2
    assert report["errors"][0].startswith("Row 3: phone_number") and report["errors"][1].startswith("Row 4: scope")
    assert len((await api.ok("get", "/v1/consents"))["data"]) == 2


async def test_only_numbers_with_a_valid_consent_of_the_scope_are_dialed(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0})) as rig:
        good, marketing, none, expired, revoked, listed = (f"+1212555{2100 + i:04d}" for i in range(6))
        for number, body in [
            (good, consent(good)),
            (marketing, consent(marketing, scope="marketing")),
            (expired, consent(expired, expires_at="2026-02-01T00:00:00Z")),
            (revoked, consent(revoked)),
            (listed, consent(listed)),
        ]:
            created = await rig.api.ok("post", "/v1/consents", 201, json=body)
            if number == revoked:
                await rig.api.ok("post", f"/v1/consents/{created['id']}/revoke")
        await rig.api.ok("post", "/v1/dnc", json={"numbers": [listed]})  # a DNC listing revokes consents
        assert not (await rig.api.ok("get", "/v1/consents", params={"phone_number": listed}))["data"][0]["valid"]
        cid = await rig.campaign(
            [good, marketing, none, expired, revoked, listed], compliance={"require_consent": "ai_voice"}
        )
        await rig.until_idle()
        dialed = {c["to_number"] for c in await rig.calls(cid)}
        assert dialed == {good}
        reasons = {lead["phone_number"]: lead["reason"] for lead in await rig.leads(cid)}
        assert (
            reasons[marketing] == reasons[none] == reasons[expired] == reasons[revoked] == "no valid consent (ai_voice)"
        )
        assert listed not in reasons  # refused at import: on the do-not-call list


async def test_no_dial_after_the_revoke_answers(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0}, talk_seconds=[30, 30])) as rig:
        numbers = [f"+1212555{2200 + i:04d}" for i in range(10)]
        ids = {}
        for number in numbers:
            ids[number] = (await rig.api.ok("post", "/v1/consents", 201, json=consent(number, scope="marketing")))["id"]
        cid = await rig.campaign(
            numbers, compliance={"require_consent": "any"}, pacing={"max_concurrency": 1, "attempts_per_second": 0.1}
        )
        await rig.run(timedelta(seconds=25))  # claimed a minute's worth (3 leads), dialed one
        waiting = [lead for lead in await rig.leads(cid) if lead["status"] == "dialing" and lead["attempts"] == 1]
        dialed = {c["to_number"] for c in await rig.calls(cid) if c["started_at"] is not None}
        claimed = [lead["phone_number"] for lead in waiting if lead["phone_number"] not in dialed]
        assert claimed, "a lead claimed and not dialed yet"
        target = claimed[0]
        await rig.api.ok("post", f"/v1/consents/{ids[target]}/revoke")
        await rig.until_idle()
        calls = [c for c in await rig.calls(cid) if c["to_number"] == target and c["started_at"] is not None]
        assert calls == []
        lead = next(lead for lead in await rig.leads(cid) if lead["phone_number"] == target)
        assert lead["status"] == "skipped" and lead["reason"] == "no valid consent (any)"
        assert len({c["to_number"] for c in await rig.calls(cid) if c["started_at"] is not None}) == 9


async def test_a_consent_that_expires_before_its_dial_stops_it(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0}, talk_seconds=[30, 30])) as rig:
        first, second = "+12125552301", "+12125552302"
        await rig.api.ok("post", "/v1/consents", 201, json=consent(first))
        soon = (NOON + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
        await rig.api.ok("post", "/v1/consents", 201, json=consent(second, expires_at=soon))
        cid = await rig.campaign(
            [first, second],
            compliance={"require_consent": "ai_voice"},
            pacing={"max_concurrency": 1, "attempts_per_second": 1},
        )
        await rig.until_idle()
        assert {c["to_number"] for c in await rig.calls(cid) if c["started_at"] is not None} == {first}
