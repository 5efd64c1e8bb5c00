"""The calling-rules table through the engine and the API, on SQLite and PostgreSQL: unknown locations
in every zone (or the campaign's, when it says so), a lead's region over its area code, Texas Sundays,
a Louisiana holiday, France's 4 attempts per 30 days and 60 days after a refusal; `region` on leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialwave.store.db import Database
from tests.conftest import Api
from tests.integration.test_leads_import import import_csv, ready_campaign
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
ALL_DAY = [{"start": "00:00", "end": "24:00"}]
ALWAYS_BUSY = {"busy": 1.0}


def at_local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


@pytest.mark.parametrize("unknown", ["all_zones", "campaign_zone"])
async def test_toll_free_number_waits_for_every_us_zone_unless_the_campaign_says_its_own(
    db_url: str, db: Database, unknown: str
) -> None:
    start = at_local("America/New_York", 2026, 3, 2, 8, 7)  # Monday 08:07 New York, 03:07 in Adak
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(
            ["+18885550100"],
            schedule={"timezone": "America/New_York", "windows": ALL_DAY},
            compliance={"unknown_location": unknown},
        )
        await rig.run(timedelta(seconds=5))
        if unknown == "all_zones":
            camp = await rig.get(cid)
            assert camp["waiting_reason"].startswith("legal hours (US)"), camp["waiting_reason"]
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        if unknown == "all_zones":  # 08:00 in Guam, the last of the 42 NANP zones to open
            assert call["started_at"] == at_local("America/New_York", 2026, 3, 2, 17, 0)
        else:
            assert call["started_at"] == start


async def test_a_texas_lead_is_not_called_before_noon_on_sunday(db_url: str, db: Database) -> None:
    start = at_local("America/Chicago", 2026, 3, 1, 11, 0)  # Sunday 11:00 in Dallas, 12:00 in New York
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        dallas, new_yorker_in_texas, new_york = "+12145550100", "+12125550101", "+12125550102"
        cid = await rig.campaign(
            [dallas, new_yorker_in_texas, new_york],
            schedule={"timezone": "UTC", "windows": ALL_DAY},
            lead_extra={new_yorker_in_texas: {"region": "US-TX", "timezone": "America/Chicago"}},
        )
        await rig.until_idle()
        starts = {c["to_number"]: c["started_at"] for c in await rig.calls(cid)}
        noon = at_local("America/Chicago", 2026, 3, 1, 12, 0)
        one_by_one = timedelta(seconds=5)  # the pace starts them a second apart
        assert noon <= starts[dallas] < noon + one_by_one  # 11:59 no, 12:00 yes
        assert noon <= starts[new_yorker_in_texas] < noon + one_by_one  # its region's rules, over the 212 code
        assert starts[new_york] == start  # 12:00 in New York: the US rule


async def test_no_call_to_louisiana_on_mardi_gras(db_url: str, db: Database) -> None:
    start = at_local("America/Chicago", 2026, 2, 17, 9, 0)  # Mardi Gras 2026, a Tuesday
    async with make_rig(db_url, db, start, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(["+15045550100"], schedule={"timezone": "UTC", "windows": ALL_DAY})
        await rig.until_idle()
        (call,) = await rig.calls(cid)
        assert call["started_at"] == at_local("America/Chicago", 2026, 2, 18, 8, 0)


async def test_a_french_numbers_fifth_attempt_in_30_days_waits(db_url: str, db: Database) -> None:
    start = at_local("Europe/Paris", 2026, 3, 2, 10, 0)  # Monday
    async with make_rig(db_url, db, start, model(outcomes=ALWAYS_BUSY, ring_seconds=(1, 1))) as rig:
        cid = await rig.campaign(
            ["+33612345678"],
            schedule={"timezone": "UTC", "windows": ALL_DAY},
            retry={"max_attempts": 6, "on": {"busy": {"enabled": True, "max_retries": 5, "interval_minutes": [60]}}},
        )
        await rig.run(timedelta(days=40))
        starts = [c["started_at"] for c in await rig.calls(cid)]
        assert starts[0] == start and len(starts) == 6
        assert [t.astimezone(ZoneInfo("Europe/Paris")).hour for t in starts[:4]] == [10, 11, 12, 14]  # not 13-14
        # the fifth: 30 days (720 h) after the first, Wednesday 1 April 11:00 (summer time since 29 March)
        assert starts[4] == at_local("Europe/Paris", 2026, 4, 1, 11, 0) == start + timedelta(days=30)
        for i in range(len(starts)):
            assert len([t for t in starts if starts[i] - timedelta(days=30) < t <= starts[i]]) <= 4


async def test_a_refusal_pauses_a_french_number_for_60_days(db_url: str, db: Database) -> None:
    start = at_local("Europe/Paris", 2026, 3, 2, 10, 0)
    answered_no = model(outcomes={"answered": 1.0}, conversion_rate=0.0, ring_seconds=(1, 1), talk_seconds=(10, 10))
    async with make_rig(db_url, db, start, answered_no) as rig:
        retry = {
            "max_attempts": 3,
            "on": {"no_conversion": {"enabled": True, "max_retries": 2, "interval_minutes": [5]}},
        }
        cid = await rig.campaign(["+33612345678"], schedule={"timezone": "UTC", "windows": ALL_DAY}, retry=retry)
        await rig.run(timedelta(days=70))
        first, second, *_ = await rig.calls(cid)
        assert first["conversion"] is False and first["ended_at"] is not None
        assert second["started_at"] >= first["ended_at"] + timedelta(days=60)
        assert second["started_at"] - first["ended_at"] < timedelta(days=63)  # then the next legal opening


async def test_region_is_validated_stored_and_returned(api: Api) -> None:
    cmp = await ready_campaign(api)
    url = f"/v1/campaigns/{cmp['id']}/leads"
    bad = await api.post(url, json={"leads": [{"phone_number": "+14155550101", "region": "US-ZZ"}]})
    assert bad.status_code == 422 and "region" in bad.text, bad.text
    lead = {"phone_number": "+14155550101", "region": "us-tx", "variables": {"customer_name": "Ada"}}
    assert (await api.ok("post", url, json={"leads": [lead]}))["accepted"] == 1
    report = await import_csv(
        api, cmp["id"], "phone,customer_name,region\n+14155550102,Bob,US-LA\n+14155550103,Cy,Texas\n"
    )
    assert report["accepted"] == 1 and report["errors"] == [
        "Row 2: region: 'TEXAS' is not an ISO 3166-2 subdivision such as US-TX"
    ]
    leads = {lead["phone_number"]: lead for lead in (await api.ok("get", url))["data"]}
    assert leads["+14155550101"]["region"] == "US-TX" and leads["+14155550102"]["region"] == "US-LA"
    assert "region" not in leads["+14155550102"]["variables"]
    lead_id = leads["+14155550101"]["id"]
    patched = await api.ok("patch", f"{url}/{lead_id}", json={"region": "US-FL"})
    assert patched["region"] == "US-FL"
    refused = await api.patch(f"{url}/{lead_id}", json={"region": "XX"})
    assert refused.status_code == 422 and "region" in refused.text
