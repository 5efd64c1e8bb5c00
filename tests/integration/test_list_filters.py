"""Every documented list filter narrows the list, numbers match in any spelling, and a query parameter
an operation does not take is a 422 naming it (never silently ignored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialwave.store.db import Database
from tests import helpers
from tests.conftest import Api
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio


async def test_phone_numbers_filter_by_number_in_any_spelling(api: Api) -> None:
    await helpers.number(api, "+14155550100")
    wanted = await helpers.number(api, "+14155550101")
    listed = await api.ok("get", "/v1/phone-numbers", params={"number": "+1 (415) 555-0101"})
    assert [n["id"] for n in listed["data"]] == [wanted["id"]]
    assert len((await api.ok("get", "/v1/phone-numbers"))["data"]) == 2


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/phone-numbers", {"numbr": "+14155550101"}),
        ("/v1/agents", {"status": "live"}),
        ("/v1/campaigns", {"state": "active"}),
        ("/v1/calls", {"campaign": "cmp_x"}),
        ("/v1/dnc", {"number": "+14155550101"}),
        ("/v1/webhook-endpoints", {"limit": "5", "enabled": "true"}),
    ],
)
async def test_an_unknown_query_parameter_is_a_422_naming_it(api: Api, url: str, params: dict[str, str]) -> None:
    response = await api.get(url, params=params)
    assert response.status_code == 422, response.text
    unknown = next(k for k in params if k != "limit")
    assert response.json()["error"]["fields"] == {unknown: "unknown query parameter"}


async def test_an_unknown_query_parameter_on_a_write_changes_nothing(api: Api) -> None:
    response = await api.post("/v1/agents", params={"dry_run": "1"}, json={"name": "a"})
    assert response.status_code == 422
    assert (await api.ok("get", "/v1/agents"))["data"] == []


async def test_leads_and_calls_filter_by_number_status_and_outcome(db_url: str, db: Database) -> None:
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    a, b, c = "+12125550171", "+12125550172", "+12125550173"
    scripted = model(scripted={a: ["busy"], b: ["answered"], c: ["no_answer"]}, ring_seconds=(1, 1))
    async with make_rig(db_url, db, start, scripted) as rig:
        cid = await rig.campaign([a, b, c], retry={"max_attempts": 1})
        await rig.run(timedelta(minutes=5))
        base = f"/v1/campaigns/{cid}/leads"

        async def ids(url: str, **params: str) -> list[str]:
            return sorted(
                x["phone_number" if "leads" in url else "to_number"]
                for x in (await rig.api.ok("get", url, params=params))["data"]
            )

        assert await ids(base, phone_number="+1 212 555 0172") == [b]
        assert await ids(base, outcome="busy") == [a]
        assert await ids(base, status="completed") == [b]
        assert await ids(base, status="failed") == [a, c]
        assert await ids("/v1/calls", phone_number="(212) 555-0173".replace("(", "+1 (")) == [c]
        assert await ids("/v1/calls", outcome="answered") == [b]
        assert await ids("/v1/calls", campaign_id=cid, outcome="no_answer") == [c]
        bad = await rig.api.get(base, params={"phone_number": "not a number"})
        assert bad.status_code == 422 and "phone_number" in bad.json()["error"]["fields"]
