"""The audit trail per dial: every call row carries the decision that allowed it, and
GET /v1/campaigns/{id}/audit streams one CSV row per attempt and one per lead skipped, with its reason.
On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dialwave.services.audit import COLUMNS
from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.store.tables import leads
from tests.conftest import Api
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York, 11:00 in Chicago
CSV = {"Content-Type": "text/csv"}


def parse(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


async def test_the_audit_csv_has_every_attempt_with_its_decision_and_every_skipped_lead(
    db_url: str, db: Database
) -> None:
    busy_then_answer = {"+13055550101": ["busy", "answered"]}
    sim = model(outcomes={"answered": 1.0}, talk_seconds=[20, 20], scripted=busy_then_answer)
    async with make_rig(db_url, db, NOON, sim) as rig:
        florida, chicago, listed, unconsented = "+13055550101", "+12125550102", "+12125550103", "+12125550104"
        await rig.api.ok("post", "/v1/dnc/import", params={"list": "vendor"}, content=f"{listed}\n", headers=CSV)
        for number in (florida, chicago, listed):
            consent = {
                "phone_number": number,
                "scope": "marketing",
                "source": "form",
                "captured_at": "2026-01-01T00:00:00Z",
            }
            await rig.api.ok("post", "/v1/consents", 201, json=consent)
        cid = await rig.campaign(
            [florida, chicago, listed, unconsented],
            lead_extra={chicago: {"timezone": "America/Chicago"}},
            dnc={"lists": ["vendor"]},
            compliance={"require_consent": "any"},
            retry={"max_attempts": 2, "on": {"busy": {"enabled": True, "max_retries": 1, "interval_minutes": [10]}}},
            schedule={"windows": [{"start": "00:00", "end": "24:00"}], "timezone": "America/New_York"},
        )
        await rig.until_idle()
        answer = await rig.api.get(f"/v1/campaigns/{cid}/audit")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = parse(answer.text)
        calls = {c["id"]: c for c in await rig.calls(cid)}
        attempts = [r for r in rows if r["kind"] == "attempt"]
        assert {r["call_id"] for r in attempts} == set(calls) and len(attempts) == 3  # Florida twice, Chicago once
        by_number: dict[str, list[dict[str, str]]] = {}
        for row in attempts:
            by_number.setdefault(row["phone_number"], []).append(row)
        first, second = sorted(by_number[florida], key=lambda r: int(r["attempt"]))
        assert (first["outcome"], second["outcome"]) == ("busy", "answered")
        assert first["rules"] == "US.hours;US-FL.hours;US-FL.cap-24h" and first["dnc_lists"] == "organization;vendor"
        assert first["zones"] == "America/New_York=2026-03-02T12:00:00-05:00"
        assert first["consent_required"] == "any" and first["consent_id"].startswith("cns_")
        assert first["checked_at"] == "2026-03-02T17:00:00+00:00" and first["at"] == "2026-03-02T17:00:00.000Z"
        assert first["abandoned"] == "false" and first["reason"]  # the retry decision taken after it
        retried = datetime.fromisoformat(second["at"]) - datetime.fromisoformat(first["ended_at"])
        assert retried >= timedelta(minutes=10)
        (chicago_row,) = by_number[chicago]
        assert chicago_row["rules"] == "US.hours" and chicago_row["answered_at"] and chicago_row["status"] == "ended"
        # the lead's zone (legal hours) and the campaign's (its windows, not recipient-local)
        assert (
            chicago_row["zones"]
            == "America/Chicago=2026-03-02T11:00:00-06:00; America/New_York=2026-03-02T12:00:00-05:00"
        )
        call = calls[chicago_row["call_id"]]
        assert call["decision"]["zones"][0] == {"zone": "America/Chicago", "local_time": "2026-03-02T11:00:00-06:00"}
        assert call["decision"]["campaign_zone"] == "America/New_York" and not call["decision"]["recipient_local_time"]
        skipped = {r["phone_number"]: r for r in rows if r["kind"] == "skipped"}
        assert set(skipped) == {listed, unconsented}
        assert skipped[listed]["reason"] == "on a do-not-call list" and skipped[listed]["call_id"] == ""
        assert skipped[unconsented]["reason"] == "no valid consent (any)"
        assert skipped[listed]["at"] == "2026-03-02T17:00:00.000Z" and skipped[listed]["attempt"] == "0"
        via_api = await rig.api.ok("get", f"/v1/calls/{chicago_row['call_id']}")
        assert via_api["decision"] == call["decision"] and via_api["abandoned"] is False


async def test_the_audit_export_pages_through_many_rows_in_order(db_url: str, db: Database) -> None:
    from dialwave.services import audit

    async with make_rig(db_url, db, NOON, model(outcomes={"busy": 1.0})) as rig:
        numbers = [f"+1212555{5000 + i:04d}" for i in range(23)]
        cid = await rig.campaign(numbers, retry={"max_attempts": 1}, pacing={"max_concurrency": 5})
        await rig.until_idle()
        async with rig.db.write() as conn:  # a skipped lead whose reason a spreadsheet would run
            await conn.execute(
                sa.update(leads).where(leads.c.phone_number == numbers[0]).values(status="skipped", reason="=1+1")
            )
        text = "".join([chunk async for chunk in audit.export(rig.db, cid, page_size=4)])
        rows = parse(text)
        attempts = [r for r in rows if r["kind"] == "attempt"]
        assert len(attempts) == 23 and [r["call_id"] for r in attempts] == sorted(r["call_id"] for r in attempts)
        assert [r["reason"] for r in rows if r["kind"] == "skipped"] == ["'=1+1"]


async def test_the_audit_is_only_for_the_campaigns_organization(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(["+12125550201"], start=False)
        created = await create_key(db, "globex-audit", ["read"], NOON)
        other = Api(rig.api.client, created.key, created.organization_id)
        assert (await other.get(f"/v1/campaigns/{cid}/audit")).status_code == 404
        assert (await rig.api.client.get(f"/v1/campaigns/{cid}/audit")).status_code == 401
        missing = await rig.api.get("/v1/campaigns/cmp_nope/audit")
        assert missing.status_code == 404 and missing.json()["error"]
        assert parse((await rig.api.get(f"/v1/campaigns/{cid}/audit")).text) == []  # nothing dialed yet
        reader = await create_key(db, f"org-{NOON.timestamp()}", ["read"], NOON)  # a read key may export
        assert (
            await Api(rig.api.client, reader.key, reader.organization_id).get(f"/v1/campaigns/{cid}/audit")
        ).status_code == 200
