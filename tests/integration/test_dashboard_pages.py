"""The dashboard over HTTP (no browser): sign-in and its cookie, sessions ended by a revoked key, CSRF on
every POST, what a read-only key sees, edit-matrix refusals beside the form fields, the CSV upload's row
errors, a lead's history. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest

from dialwave.api.app import create_app
from dialwave.clock import VirtualClock
from dialwave.config import Settings
from dialwave.services.auth import create_key, revoke_key
from dialwave.store.db import Database
from dialwave.webhooks.transport import AiohttpTransport
from dialwave.webhooks.worker import DeliverySettings, DeliveryWorker
from dialwave.wiring import with_dashboard
from tests.conftest import T0, Api
from tests.helpers import campaign
from tests.rig import make_rig, model

pytestmark = pytest.mark.asyncio

Client = Callable[[], httpx.AsyncClient]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
POST_FORM = re.compile(r'<form method="post" action="([^"]+)"')


@pytest.fixture
async def clients(settings: Settings, db: Database, clock: VirtualClock) -> AsyncIterator[Client]:
    """New browsers (each its own cookie jar) on one app."""
    app = with_dashboard(create_app(settings, db=db, clock=clock))
    made: list[httpx.AsyncClient] = []

    def new() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialwave.test")
        made.append(client)
        return client

    yield new
    for client in made:
        await client.aclose()


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in with `key`; returns the session's CSRF token (from the page it lands on)."""
    form = await client.get("/login")
    assert form.status_code == 200
    token = CSRF.search(form.text)
    assert token is not None
    answer = await client.post("/login", data={"api_key": key, "csrf_token": token.group(1), "next": "/"})
    assert answer.status_code == 303, answer.text
    home = await client.get("/")
    assert home.status_code == 200
    found = CSRF.search(home.text)
    assert found is not None
    return found.group(1)


async def test_pages_need_a_session(clients: Client) -> None:
    client = clients()
    for path in ("/", "/campaigns/cmp_x", "/calls", "/dnc", "/webhooks", "/agents", "/numbers"):
        answer = await client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/login?next={path}"
    posted = await client.post("/campaigns/cmp_x/pause", data={"csrf_token": "x"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")
    assert (await client.get("/campaigns/cmp_x/events")).status_code == 303  # no stream without a session
    assert (await client.get("/static/dashboard.js")).status_code == 200
    assert (await client.get("/static/dashboard.css")).headers["content-type"].startswith("text/css")


async def test_sign_in_sets_a_strict_http_only_cookie_and_never_shows_the_key(clients: Client, api: Api) -> None:
    client = clients()
    page = await client.get("/login?next=/dnc")
    assert 'name="api_key"' in page.text and '<label for="api_key">' in page.text
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    token = CSRF.search(page.text)
    assert token is not None
    no_token = await client.post("/login", data={"api_key": api.key, "next": "/"})
    assert no_token.status_code == 403
    wrong = await client.post("/login", data={"api_key": "dw_live_nope", "csrf_token": token.group(1)})
    assert wrong.status_code == 401 and "not valid" in wrong.text and "dw_live_nope" not in wrong.text
    token = CSRF.search(wrong.text)
    assert token is not None
    answer = await client.post("/login", data={"api_key": api.key, "csrf_token": token.group(1), "next": "/dnc"})
    assert answer.status_code == 303 and answer.headers["location"] == "/dnc"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("dw_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert api.key not in cookie and api.org_id not in answer.text
    await campaign(api, "Visible")
    for path in ("/", "/dnc", "/calls", "/agents", "/numbers", "/webhooks"):
        shown = await client.get(path)
        assert shown.status_code == 200, path
        assert api.key not in shown.text, path
        assert shown.headers["content-security-policy"].startswith("default-src 'self'")
        assert shown.headers["x-frame-options"] == "DENY"
    assert "Visible" in (await client.get("/")).text
    evil = await client.post("/login", data={"api_key": api.key, "csrf_token": "x", "next": "//evil.example"})
    assert evil.status_code == 403  # the sign-in form's token is spent on a new page only
    again = await client.get("/login?next=//evil.example")
    assert again.status_code == 303 and again.headers["location"] == "/"  # signed in: a local redirect only


async def test_a_https_request_gets_a_secure_cookie(settings: Settings, db: Database, clock: VirtualClock) -> None:
    created = await create_key(db, "acme", ["read"], T0)
    app = with_dashboard(create_app(settings, db=db, clock=clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://dialwave.test") as client:
        page = await client.get("/login")
        token = CSRF.search(page.text)
        assert token is not None
        answer = await client.post("/login", data={"api_key": created.key, "csrf_token": token.group(1)})
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]


async def test_a_revoked_key_ends_its_sessions(clients: Client, db: Database) -> None:
    created = await create_key(db, "acme", ["read", "write"], T0)
    client = clients()
    await sign_in(client, created.key)
    assert await revoke_key(db, created.key_id, T0)
    answer = await client.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


async def test_a_forged_or_altered_cookie_is_no_session(clients: Client, api: Api) -> None:
    client = clients()
    await sign_in(client, api.key)
    value = client.cookies["dw_session"]
    key_id, org, expires, nonce, mac = value.split(".")
    for forged in (
        f"{key_id}.{org}.{int(expires) + 9999}.{nonce}.{mac}",
        "x",
        f"{key_id}.{org}.{expires}.{nonce}.AAAA",
    ):
        other = clients()
        other.cookies.set("dw_session", forged, domain="dialwave.test")
        assert (await other.get("/")).status_code == 303


async def test_every_post_needs_the_session_csrf_token(clients: Client, api: Api) -> None:
    camp = await campaign(api, ready=True)
    client = clients()
    token = await sign_in(client, api.key)
    url = f"/campaigns/{camp['id']}/start"
    assert (await client.post(url)).status_code == 403
    assert (await client.post(url, data={"csrf_token": "wrong"})).status_code == 403
    other = clients()
    other_token = await sign_in(other, api.key)  # another session's token does not serve here
    assert other_token != token
    assert (await client.post(url, data={"csrf_token": other_token})).status_code == 403
    assert (await api.ok("get", f"/v1/campaigns/{camp['id']}"))["status"] == "draft"
    started = await client.post(url, data={"csrf_token": token})
    assert started.status_code == 303 and started.headers["location"] == f"/campaigns/{camp['id']}?notice=start"
    page = await client.get(started.headers["location"])
    assert "Campaign started." in page.text
    assert (await api.ok("get", f"/v1/campaigns/{camp['id']}"))["status"] == "active"
    for path in ("/dnc/add", "/dnc/remove", "/logout", f"/campaigns/{camp['id']}/settings"):
        assert (await client.post(path, data={"numbers": "+14155550199"})).status_code == 403, path
    paused = await client.post(f"/campaigns/{camp['id']}/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    assert (await api.ok("get", f"/v1/campaigns/{camp['id']}"))["status"] == "paused"
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login?notice=signed_out"
    assert (await client.get("/")).status_code == 303


async def test_a_read_key_sees_no_form_that_changes_anything(clients: Client, api: Api, db: Database) -> None:
    camp = await campaign(api, ready=True)
    await api.ok("post", f"/v1/campaigns/{camp['id']}/start")
    await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550111"]})
    created = await create_key(db, "acme", ["read"], T0)
    reader = clients()
    token = await sign_in(reader, created.key)
    leads = await api.ok("get", f"/v1/campaigns/{camp['id']}/leads")
    lead_id = leads["data"][0]["id"]
    for path in (
        "/",
        f"/campaigns/{camp['id']}",
        f"/campaigns/{camp['id']}/leads",
        f"/campaigns/{camp['id']}/leads/{lead_id}",
        "/calls",
        "/dnc",
        "/webhooks",
        "/agents",
        "/numbers",
    ):
        page = await reader.get(path)
        assert page.status_code == 200, path
        assert POST_FORM.findall(page.text) == ["/logout"], path  # signing out is the only POST
        assert "Read-only key" in page.text
    assert "+14155550111" in (await reader.get("/dnc")).text
    for path in (f"/campaigns/{camp['id']}/pause", "/dnc/add", f"/campaigns/{camp['id']}/settings"):
        refused = await reader.post(path, data={"csrf_token": token, "numbers": "+14155550122"})
        assert refused.status_code == 403 and "read-only" in refused.text, path
    assert (await api.ok("get", f"/v1/campaigns/{camp['id']}"))["status"] == "active"


async def test_edit_refusals_are_shown_beside_the_fields(clients: Client, api: Api) -> None:
    camp = await campaign(api, ready=True, schedule={"timezone": "America/New_York"})
    await api.ok("post", f"/v1/campaigns/{camp['id']}/start")
    client = clients()
    token = await sign_in(client, api.key)
    url = f"/campaigns/{camp['id']}/settings"
    form = {"csrf_token": token, "max_concurrency": "4", "attempts_per_second": "2", "windows": "09:00-12:00"}
    refused = await client.post(url, data={**form, "timezone": "Europe/Paris"})
    assert refused.status_code == 409
    assert re.search(r'id="timezone"[^>]*aria-invalid="true"', refused.text)
    assert 'id="timezone-error">cannot change while active; pause the campaign first' in refused.text
    assert 'value="Europe/Paris"' in refused.text  # what was typed is kept
    bad = await client.post(url, data={**form, "timezone": "America/New_York", "max_concurrency": "0"})
    assert bad.status_code == 422 and 'id="max_concurrency-error"' in bad.text
    windows = await client.post(url, data={**form, "timezone": "America/New_York", "windows": "9 to 5"})
    assert windows.status_code == 422 and 'id="windows-error">write each window as start-end' in windows.text
    ok = await client.post(url, data={**form, "timezone": "America/New_York", "windows": "09:00-12:00, 14:00-18:00"})
    assert ok.status_code == 303
    after = await api.ok("get", f"/v1/campaigns/{camp['id']}")
    assert after["pacing"]["max_concurrency"] == 4 and after["pacing"]["attempts_per_second"] == 2
    assert after["schedule"]["windows"] == [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "18:00"}]
    stale = await client.post(url, data={**form, "timezone": "America/New_York", "version": "1"})
    assert stale.status_code == 409 and "changed since you read it" in stale.text


async def test_a_csv_upload_shows_its_row_errors_and_a_csv_of_them(clients: Client, api: Api) -> None:
    camp = await campaign(api, ready=True)
    client = clients()
    token = await sign_in(client, api.key)
    csv_text = "phone_number,name\n+12125550124,Lin\nnot-a-number,Bo\n+12125550125,\n+12125550124,Lin\n"
    answer = await client.post(
        f"/campaigns/{camp['id']}/leads/import",
        data={"csrf_token": token},
        files={"file": ("leads.csv", csv_text.encode(), "text/csv")},
    )
    assert answer.status_code == 200, answer.text
    assert "1 accepted" in answer.text and "Row 2" not in answer.text  # rows are shown as a table
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td></tr>', answer.text)
    assert [r for r, _ in rows] == ["2", "3"], rows  # data rows count from 1
    link = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)" download="import-errors.csv"', answer.text)
    assert link is not None
    text = base64.b64decode(unquote(link.group(1))).decode()
    assert text.splitlines()[0] == "row,error" and text.splitlines()[1].startswith("2,invalid phone number")
    no_token = await client.post(
        f"/campaigns/{camp['id']}/leads/import", files={"file": ("leads.csv", csv_text.encode(), "text/csv")}
    )
    assert no_token.status_code == 403
    empty = await client.post(f"/campaigns/{camp['id']}/leads/import", data={"csrf_token": token})
    assert empty.status_code == 422 and "Choose a CSV file" in empty.text
    listed = await client.get(f"/campaigns/{camp['id']}/leads", params={"phone_number": "+1 (212) 555-0124"})
    assert "+12125550124" in listed.text and "+12125550123" not in listed.text
    queued = await client.get(f"/campaigns/{camp['id']}/leads", params={"status": "completed"})
    assert "No lead matches these filters" in queued.text
    bad_number = await client.get(f"/campaigns/{camp['id']}/leads", params={"phone_number": "nope"})
    assert bad_number.status_code == 200 and "invalid phone number" in bad_number.text


async def test_dnc_add_import_and_remove(clients: Client, api: Api) -> None:
    client = clients()
    token = await sign_in(client, api.key)
    added = await client.post("/dnc/add", data={"csrf_token": token, "numbers": "+14155550101, +14155550102, zz"})
    assert added.status_code == 200 and "2 added" in added.text and "invalid phone number" in added.text
    imported = await client.post(
        "/dnc/import",
        data={"csrf_token": token, "reason": "list"},
        files={"file": ("dnc.csv", b"phone\n+14155550102\n+14155550103\nxyz\n", "text/csv")},
    )
    assert "1 added" in imported.text and "1 already listed" in imported.text
    assert re.search(r'<td class="num">4</td><td>invalid phone number', imported.text)
    listed = await api.ok("get", "/v1/dnc")
    assert {n["phone_number"] for n in listed["data"]} == {"+14155550101", "+14155550102", "+14155550103"}
    removed = await client.post("/dnc/remove", data={"csrf_token": token, "phone_number": "+14155550101"})
    assert removed.status_code == 303
    page = await client.get(removed.headers["location"])
    assert "Number removed" in page.text and "+14155550101" not in page.text


async def test_the_dashboard_is_not_in_the_openapi_document(clients: Client) -> None:
    paths = (await clients().get("/openapi.json")).json()["paths"]
    assert all(p.startswith(("/v1/", "/healthz", "/readyz")) for p in paths), sorted(paths)


async def test_the_forecast_and_what_if(clients: Client, api: Api) -> None:
    """The campaign's forecast (the real engine on a virtual clock), and "what if" with the changed
    fields as a campaign merge-patch; a bad value is named beside its field."""
    camp = await campaign(api, ready=True)
    await api.ok("post", f"/v1/campaigns/{camp['id']}/start")
    client = clients()
    await sign_in(client, api.key)
    params = {"max_concurrency": "20", "windows": "09:00-17:00"}
    page = await client.get(f"/campaigns/{camp['id']}/forecast", params=params, headers={"X-Fragment": "1"})
    assert page.status_code == 200 and "<html" not in page.text
    assert page.text.count(" UTC</strong>") == 2, page.text  # the forecast and the what-if each complete
    assert "With these changes" in page.text and "outcome mix: defaults (0 calls ended so far)" in page.text
    bad = await client.get(
        f"/campaigns/{camp['id']}/forecast", params={"max_concurrency": "many"}, headers={"X-Fragment": "1"}
    )
    assert "must be a whole number" in bad.text and "<html" not in bad.text
    await api.ok("post", f"/v1/campaigns/{camp['id']}/cancel")
    done = await client.get(f"/campaigns/{camp['id']}/forecast", headers={"X-Fragment": "1"})
    assert "nothing is left to forecast" in done.text


async def test_the_campaign_stream_needs_the_session(clients: Client, api: Api) -> None:
    camp = await campaign(api, ready=True)
    await api.ok("post", f"/v1/campaigns/{camp['id']}/cancel")  # a finished campaign's stream ends at once
    client = clients()
    await sign_in(client, api.key)
    answer = await client.get(f"/campaigns/{camp['id']}/events")
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("event: campaign\ndata: ")
    assert '"status": "cancelled"' in answer.text and '"view": {' in answer.text
    assert (await client.get("/campaigns/cmp_nope/events")).status_code == 404


NOON = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


async def test_a_lead_history_and_the_chart_after_calls(db_url: str, db: Database) -> None:
    async with make_rig(db_url, db, NOON, model(outcomes={"answered": 1.0})) as rig:
        cid = await rig.campaign(["+12125550301", "+12125550302"], pacing={"max_concurrency": 2})
        await rig.until_idle()
        calls = await rig.calls(cid)
        assert calls and all(c["outcome"] for c in calls)
        first = calls[0]
        await rig.api.ok(
            "post", f"/v1/calls/{first['id']}/result", json={"summary": "Booked a demo for Tuesday", "conversion": True}
        )
        client = rig.api.client
        await sign_in(client, rig.api.key)
        page = await client.get(f"/campaigns/{cid}/leads/{first['lead_id']}")
        assert page.status_code == 200
        assert "Attempt 1: answered" in page.text and "Booked a demo for Tuesday" in page.text
        chart = await client.get(f"/campaigns/{cid}/chart")
        assert f"{len(calls)} attempts in the last 30 minutes" in chart.text
        campaign_page = await client.get(f"/campaigns/{cid}")
        assert 'data-field="counts.completed">2<' in campaign_page.text


async def test_webhook_deliveries_and_sending_one_again(clients: Client, api: Api, db: Database) -> None:
    endpoint = await api.ok("post", "/v1/webhook-endpoints", 201, json={"url": "https://93.184.216.34/hook"})
    await api.ok("post", "/v1/dnc", json={"numbers": ["+14155550177"]})  # an event: lead.dnc_added
    worker = DeliveryWorker(db, AiohttpTransport(), VirtualClock(T0), DeliverySettings())
    assert await worker.fan_out(T0) == 1  # a pending delivery (nothing is sent here)
    client = clients()
    token = await sign_in(client, api.key)
    listing = await client.get("/webhooks")
    assert f'href="/webhooks/{endpoint["id"]}"' in listing.text
    page = await client.get(f"/webhooks/{endpoint['id']}")
    assert "lead.dnc_added" in page.text and "Send again" in page.text
    [delivery] = (await api.ok("get", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"))["data"]
    url = f"/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/retry"
    assert (await client.post(url)).status_code == 403  # no CSRF token
    again = await client.post(url, data={"csrf_token": token})
    assert again.status_code == 303 and again.headers["location"].endswith("?notice=retried")
    assert "queued to be sent again" in (await client.get(again.headers["location"])).text
    await api.ok("patch", f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False})
    refused = await client.post(url, data={"csrf_token": token})
    assert refused.status_code == 409 and "the endpoint is disabled" in refused.text
    assert (await client.get("/webhooks/whe_nope")).status_code == 404
