"""No spelling of a number gets past the do-not-call list or the deduplication: a number on the list,
written with any Unicode digits, full-width signs or separators, in a JSON batch, a CSV file or the
DNC list itself, is never dialed; three spellings of one number are one lead. On SQLite and
PostgreSQL, the real engine on a virtual clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialwave.store.db import Database
from tests.rig import make_rig, model
from tests.unit.test_phone_spellings import spellings

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
ANSWER = model(outcomes={"answered": 1.0})


@pytest.mark.asyncio
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=spellings(), where=st.sampled_from(["json", "csv", "dnc"]))
async def test_a_number_on_the_dnc_list_is_never_dialed_in_any_spelling(
    db_url: str, db: Database, case: tuple[str, str], where: str
) -> None:
    e164, spelled = case
    other = "+12125550177"
    async with make_rig(db_url, db, START, ANSWER, org=f"org-{uuid.uuid4().hex[:8]}") as rig:
        listed = spelled if where == "dnc" else e164
        await rig.api.ok("post", "/v1/dnc", json={"numbers": [listed]})
        cid = await rig.campaign([other])
        lead_number = e164 if where == "dnc" else spelled
        if where == "csv":
            body = f"phone_number\n{lead_number}\n".encode()
            report = await rig.api.ok(
                "post", f"/v1/campaigns/{cid}/leads/import", content=body, headers={"Content-Type": "text/csv"}
            )
        else:
            report = await rig.api.ok(
                "post", f"/v1/campaigns/{cid}/leads", json={"leads": [{"phone_number": lead_number}]}
            )
        assert report["accepted"] == 0 and (report["dnc"] == 1 or e164 == other), report
        await rig.run(timedelta(minutes=5))
        dialed = {c["to_number"] for c in await rig.calls(cid)}
        assert e164 not in dialed and all(n.isascii() for n in dialed)


@pytest.mark.asyncio
async def test_three_spellings_of_one_number_are_one_lead(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, START, ANSWER) as rig:
        spelled = [
            "+12125550123",
            "+1212555012\u0663",
            "\uff0b\uff11\uff12\uff11\uff12\uff15\uff15\uff15\uff10\uff11\uff12\uff13",
        ]
        cid = await rig.campaign([spelled[0]])
        report = await rig.api.ok(
            "post", f"/v1/campaigns/{cid}/leads", json={"leads": [{"phone_number": n} for n in spelled[1:]]}
        )
        assert (report["accepted"], report["duplicates"]) == (0, 2)
        csv = "phone_number\n" + "\n".join(spelled) + "\n"
        imported = await rig.api.ok(
            "post", f"/v1/campaigns/{cid}/leads/import", content=csv.encode(), headers={"Content-Type": "text/csv"}
        )
        assert imported["accepted"] == 0 and imported["duplicates"] == 3
        await rig.run(timedelta(minutes=5))
        assert [c["to_number"] for c in await rig.calls(cid)] == ["+12125550123"]
        number = await rig.api.post("/v1/phone-numbers", json={"number": "+1415555\u0660\u0661\u0660\u0660"})
        assert number.status_code == 201 and number.json()["number"] == "+14155550100"
