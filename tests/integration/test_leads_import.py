"""Lead import (CSV and JSON) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dialwave.store.db import Database
from tests import helpers
from tests.conftest import Api


async def ready_campaign(api: Api, **over: Any) -> dict[str, Any]:
    agt = await helpers.agent(api, required_variables=["customer_name"], system_prompt="", opening_message="")
    pn = await helpers.number(api)
    body = {"agent_id": agt["id"], "caller_ids": [{"phone_number_id": pn["id"]}], **over}
    return await helpers.campaign(api, "Import", **body)


async def import_csv(api: Api, cid: str, text: str | bytes, **params: str) -> dict[str, Any]:
    data = text.encode() if isinstance(text, str) else text
    return dict(
        await api.ok(
            "post",
            f"/v1/campaigns/{cid}/leads/import",
            content=data,
            params=params,
            headers={"Content-Type": "text/csv"},
        )
    )


async def test_row_level_errors_keep_valid_rows(api: Api) -> None:
    cmp = await ready_campaign(api)
    csv_text = (
        "phone_number,customer_name,plan\n"
        "+14155550101,Ada,gold\n"
        "+14155550102,Bob,silver\n"
        "+14155550103,,gold\n"
        "+14155550104,Cy,\n"
        "+14155550105,Di,gold\n"
        "+14155550106,Ed,gold\n"
        "+1234,Fay,gold\n"
    )
    report = await import_csv(api, cmp["id"], csv_text)
    assert report["accepted"] == 5 and report["rejected"] == 2
    assert report["errors"] == [
        "Row 3: missing required variable 'customer_name'",
        "Row 7: invalid phone number '+1234'",
    ]
    leads = await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads")
    assert len(leads["data"]) == 5
    by_phone = {lead["phone_number"]: lead for lead in leads["data"]}
    assert by_phone["+14155550101"]["variables"] == {"customer_name": "Ada", "plan": "gold"}
    assert "plan" not in by_phone["+14155550104"]["variables"]  # empty cell = not supplied
    counts = (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["counts"]
    assert counts["total"] == counts["queued"] == 5


async def test_csv_import_reads_semicolons_tabs_a_bom_column_aliases_and_a_default_region(api: Api) -> None:
    cmp = await ready_campaign(api)
    semicolon = "\ufeffPhone;customer_name;Timezone\n(212) 555-0101;Ada;America/New_York\n212-555-0102;Bob;\n"
    report = await import_csv(api, cmp["id"], semicolon.encode("utf-8"))
    assert report["accepted"] == 2, report
    tabbed = "number\tcustomer_name\n020 7946 0000\tEve\n"
    assert (await import_csv(api, cmp["id"], tabbed, default_region="GB"))["accepted"] == 1
    leads = (await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads"))["data"]
    assert {lead["phone_number"] for lead in leads} == {"+12125550101", "+12125550102", "+442079460000"}
    assert next(lead for lead in leads if lead["phone_number"] == "+12125550101")["timezone"] == "America/New_York"


async def test_duplicates_in_file_and_campaign_are_counted(api: Api) -> None:
    cmp = await ready_campaign(api)
    text = "phone,customer_name\n+14155550101,A\n+1 415 555 0101,A\n+14155550102,B\n"
    first = await import_csv(api, cmp["id"], text)
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    second = await import_csv(api, cmp["id"], text)
    assert (second["accepted"], second["duplicates"]) == (0, 3)
    assert (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["counts"]["total"] == 2


async def test_dnc_numbers_are_reported_and_skipped(api: Api) -> None:
    cmp = await ready_campaign(api, dnc={"sources": ["organization", "custom"], "custom_numbers": ["+14155550103"]})
    await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550102"], "reason": "asked"})
    text = "phone,customer_name\n+14155550101,A\n+14155550102,B\n+14155550103,C\n"
    report = await import_csv(api, cmp["id"], text)
    assert (report["accepted"], report["dnc"]) == (1, 2)
    assert "Row 2: +14155550102 is on the do-not-call list" in report["errors"]


async def test_defaults_satisfy_required_variables(api: Api) -> None:
    cmp = await ready_campaign(api, dynamic_variables={"customer_name": "there"})
    assert (await import_csv(api, cmp["id"], "phone\n+14155550101\n"))["accepted"] == 1


async def test_a_csv_uploaded_as_a_multipart_file_is_imported(api: Api) -> None:
    cmp = await ready_campaign(api)
    files = {"file": ("leads.csv", b"phone_number,customer_name\n4155550101,Ada\n", "text/csv")}
    report = await api.ok("post", f"/v1/campaigns/{cmp['id']}/leads/import", files=files, data={"default_region": "US"})
    assert report["accepted"] == 1


async def test_bad_files_are_4xx_and_store_nothing(api: Api, settings) -> None:  # type: ignore[no-untyped-def]
    cmp = await ready_campaign(api)
    url = f"/v1/campaigns/{cmp['id']}/leads/import"
    no_phone = await api.post(url, content=b"name,city\nAda,Paris\n", headers={"Content-Type": "text/csv"})
    assert no_phone.status_code == 422 and "file" in no_phone.json()["error"]["fields"]
    latin = await api.post(
        url,
        content="phone,customer_name\n+14155550101,Jos\xe9\n".encode("latin-1"),
        headers={"Content-Type": "text/csv"},
    )
    assert latin.status_code == 422
    wrong_type = await api.post(url, content=b"{}", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 422 and "Content-Type" in wrong_type.json()["error"]["fields"]
    settings.import_max_bytes = 64
    big = await api.post(
        url, content=b"phone,customer_name\n" + b"+14155550101,A\n" * 10, headers={"Content-Type": "text/csv"}
    )
    assert big.status_code == 413 and big.json()["error"]["type"] == "payload_too_large"
    settings.import_max_bytes = 10_000
    settings.import_max_rows = 3
    many = await api.post(
        url, content=b"phone,customer_name\n" + b"+14155550101,A\n" * 5, headers={"Content-Type": "text/csv"}
    )
    assert many.status_code == 413
    assert (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["counts"]["total"] == 0


async def test_batches_commit_as_they_go(api: Api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.import_batch_rows = 10
    cmp = await ready_campaign(api)
    rows = "".join(f"+1415555{i:04d},N{i}\n" for i in range(100, 135))
    report = await import_csv(api, cmp["id"], "phone,customer_name\n" + rows)
    assert report["accepted"] == 35 and report["rows"] == 35
    assert (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["counts"]["total"] == 35


async def test_a_json_batch_stores_valid_leads_with_their_overrides_and_reports_bad_rows(api: Api) -> None:
    cmp = await ready_campaign(api)
    leads = [
        {
            "phone_number": "+14155550101",
            "variables": {"customer_name": "Ada"},
            "agent_overrides": {"opening_message": "Welcome back"},
        },
        {"phone_number": "4155550102", "variables": {"customer_name": "Bob"}, "timezone": "Nowhere/Land"},
        {"phone_number": "4155550103", "variables": {}},
    ]
    report = await api.ok("post", f"/v1/campaigns/{cmp['id']}/leads", json={"leads": leads, "default_region": "US"})
    assert report["accepted"] == 1
    assert report["errors"] == [
        "Row 2: unknown time zone 'Nowhere/Land'",
        "Row 3: missing required variable 'customer_name'",
    ]
    lead = (await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads"))["data"][0]
    assert lead["agent_overrides"] == {"opening_message": "Welcome back"}
    one = await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads/{lead['id']}")
    assert one["status"] == "queued" and one["attempts"] == 0


async def test_delete_lead_updates_counts(api: Api) -> None:
    cmp = await ready_campaign(api)
    await import_csv(api, cmp["id"], "phone,customer_name\n+14155550101,A\n+14155550102,B\n")
    lead = (await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads"))["data"][0]
    await api.ok("delete", f"/v1/campaigns/{cmp['id']}/leads/{lead['id']}", 204)
    counts = (await api.ok("get", f"/v1/campaigns/{cmp['id']}"))["counts"]
    assert counts["total"] == counts["queued"] == 1
    filtered = await api.ok("get", f"/v1/campaigns/{cmp['id']}/leads", params={"status": "queued"})
    assert len(filtered["data"]) == 1


async def test_finished_campaign_takes_no_leads(api: Api) -> None:
    cmp = await ready_campaign(api)
    await api.ok("post", f"/v1/campaigns/{cmp['id']}/cancel")
    response = await api.post(f"/v1/campaigns/{cmp['id']}/leads", json={"leads": [{"phone_number": "+14155550101"}]})
    assert response.status_code == 409 and response.json()["error"]["code"] == "CAMPAIGN_FINISHED"


async def test_the_dnc_list_adds_normalised_numbers_once_finds_and_deletes_them(api: Api) -> None:
    added = await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550101", "+1 415 555 0101", "+14155550102"]})
    assert added == {"added": 2, "already_listed": 1}
    bad = await api.post("/v1/dnc", json={"numbers": ["+14155550103", "nope"]})
    assert bad.status_code == 422 and "numbers[1]" in bad.json()["error"]["fields"]
    national = await api.get("/v1/dnc", params={"phone_number": "(415) 555-0101"})
    assert national.status_code == 422 and "phone_number" in national.json()["error"]["fields"]
    found = await api.ok("get", "/v1/dnc", params={"phone_number": "+1 415 555 0101"})
    assert [d["phone_number"] for d in found["data"]] == ["+14155550101"]
    await api.ok("delete", "/v1/dnc", 204, params={"phone_number": "+14155550101"})
    assert (await api.delete("/v1/dnc", params={"phone_number": "+14155550101"})).status_code == 404


async def test_dnc_add_counts_numbers_already_listed(api: Api) -> None:
    # on PostgreSQL this once reported every number as added (asyncpg's executemany has no row count)
    await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550101"]})
    again = await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550101", "+14155550102"]})
    assert again == {"added": 1, "already_listed": 1}


async def test_a_big_load_refreshes_planner_statistics_on_postgresql(api: Api, db: Database, backend: str) -> None:
    """Claims on 1,000,000 fresh leads ran 4.9x slower on stale statistics (docs/benchmarks.md)."""
    camp = await helpers.campaign(api, "Big", ready=True)
    leads = [{"phone_number": f"+1312555{i:04d}", "variables": {"name": "A"}} for i in range(10_000)]
    report = await api.ok("post", f"/v1/campaigns/{camp['id']}/leads", json={"leads": leads})
    assert report["accepted"] == 10_000
    if backend == "postgresql":
        async with db.read() as conn:
            tuples = await conn.scalar(sa.text("SELECT reltuples FROM pg_class WHERE relname = 'leads'"))
        assert tuples is not None and tuples >= 10_000  # ANALYZE ran (a fresh table says -1)
