"""Named do-not-call lists imported in bulk (POST /v1/dnc/import): a file of national or E.164 numbers
replaces the list of that name whole; campaigns naming it in `dnc.lists` skip its numbers; a list older
than its max_age_days makes them warn. On SQLite and PostgreSQL, virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dialwave.clock import VirtualClock
from dialwave.store.db import Database
from dialwave.store.tables import dnc_list_numbers, dnc_lists
from tests.conftest import Api
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio
NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday noon in New York
CSV = {"Content-Type": "text/csv"}


async def test_a_file_becomes_a_named_list_and_a_new_file_replaces_it(api: Api, other_api: Api, db: Database) -> None:
    body = "phone\n2125550101\n+1 212 555 0102\n\n# a comment\n(212) 555-0103,extra cell\nnot a number\n2125550101\n"
    params = {"list": "registry", "default_region": "US", "source": "US National DNC Registry", "max_age_days": 31}
    answer = await api.ok("post", "/v1/dnc/import", params=params, content=body, headers=CSV)
    assert answer["imported"] == 3 and answer["rejected"] == 1 and answer["lines"] == 8
    assert answer["errors"] == ["Row 7: 'not a number' is not a phone number"]
    assert answer["list"]["name"] == "registry" and answer["list"]["numbers"] == 3 and not answer["list"]["stale"]
    again = await api.ok("post", "/v1/dnc/import", params={"list": "registry"}, content="+12125550199\n", headers=CSV)
    assert again["imported"] == 1 and again["list"]["source"] is None
    async with db.read() as conn:  # the replaced list was emptied after the answer
        assert await conn.scalar(sa.select(sa.func.count()).select_from(dnc_list_numbers)) == 1
        assert await conn.scalar(sa.select(sa.func.count()).select_from(dnc_lists)) == 1
    lists = (await api.ok("get", "/v1/dnc/lists"))["data"]
    assert [(x["name"], x["numbers"]) for x in lists] == [("registry", 1)]
    assert (await other_api.ok("get", "/v1/dnc/lists"))["data"] == []
    assert (await other_api.get("/v1/dnc/lists/registry")).status_code == 404
    bad = await api.post("/v1/dnc/import", params={"list": "../etc"}, content="+12125550199\n", headers=CSV)
    assert bad.status_code == 422 and "list" in bad.json()["error"]["fields"]
    assert (await api.delete("/v1/dnc/lists/registry")).status_code == 204
    assert (await api.get("/v1/dnc/lists/registry")).status_code == 404


async def test_campaigns_naming_a_list_skip_its_numbers(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0})) as rig:
        listed, free = "+12125552401", "+12125552402"
        file = "2125552401\n"
        await rig.api.ok(
            "post", "/v1/dnc/import", params={"list": "vendor", "default_region": "US"}, content=file, headers=CSV
        )
        cid = await rig.campaign([listed, free], dnc={"lists": ["vendor"]})
        off = await rig.campaign(["+12125552403"], dnc={"enabled": False, "lists": ["vendor"]})
        await rig.until_idle()
        assert {c["to_number"] for c in await rig.calls(cid)} == {free}
        reasons = {lead["phone_number"]: lead["reason"] for lead in await rig.leads(cid)}
        assert reasons[listed] == "on a do-not-call list"
        assert {c["to_number"] for c in await rig.calls(off)} == {"+12125552403"}


async def test_a_stale_or_missing_list_warns_on_the_campaign(api: Api, clock: VirtualClock) -> None:
    from tests import helpers

    params = {"list": "registry", "default_region": "US", "max_age_days": 31}
    await api.ok("post", "/v1/dnc/import", params=params, content="2125550101\n", headers=CSV)
    cmp = await helpers.campaign(api, "with lists", dnc={"lists": ["registry", "nowhere"]})
    assert cmp["warnings"] == [
        "do-not-call list 'nowhere' does not exist (import it: POST /v1/dnc/import?list=nowhere)"
    ]
    clock.advance(timedelta(days=32))
    later = await api.ok("get", f"/v1/campaigns/{cmp['id']}")
    assert later["warnings"][0] == "do-not-call list 'registry' was refreshed 32 days ago (its max_age_days is 31)"
    assert (await api.ok("get", "/v1/dnc/lists"))["data"][0]["stale"] is True


async def test_a_number_repeated_across_batches_is_listed_once(db: Database) -> None:
    from dialwave.store.repositories import dnc_lists as repo
    from dialwave.store.tables import organizations

    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.write() as conn:
        await conn.execute(organizations.insert().values(id="org_x", name="x", created_at=now))
        await repo.new_list(conn, {"id": "dncl_x", "organization_id": "org_x", "created_at": now})
        await repo.fill(conn, "dncl_x", ["+12125550101", "+12125550102"])
        await repo.fill(conn, "dncl_x", ["+12125550102", "+12125550103", "+12125550103"])  # COPY fails: insert
        assert await repo.count_numbers(conn, "dncl_x") == 3
