"""The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright for
Python with `executable_path`) against `dialwave serve` with the engine and the simulated carrier.

Sign in (with the keyboard), upload a CSV with errors and see them (and download them), start the
campaign, watch its counts change without a reload, pause it and see no new call, open a lead's history,
look at it 390 px wide, and sign in with a read-only key and find no button that changes anything.
Screenshots go to test-artifacts/screenshots/. Without chromium (or Playwright) the test skips with a
message; with CI=true it fails."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.store.migrate import upgrade
from tests.e2e.server import new_key, running_server, zone_at_noon

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LEADS = 60
MUTATING = re.compile(r"^(Start|Pause|Resume|Cancel|Upload|Save settings|Add to the list|Import|Remove|Send again)")

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"{why}: the browser tests need it in CI (.ci/run installs Debian's chromium)")
    pytest.skip(f"{why}: the browser tests are skipped")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def read_key(database_url: str, org: str) -> str:
    async def run() -> str:
        db = Database(database_url)
        try:
            return (await create_key(db, org, ["read"], datetime.now(UTC))).key
        finally:
            await db.dispose()

    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(asyncio.run(run())))
    thread.start()
    thread.join()
    return found[0]


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, base: str, key: str) -> None:
    """With the keyboard: the key field has the focus, Enter submits."""
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()


def setup_campaign(http: httpx.Client) -> dict[str, Any]:
    """An agent, a simulated number and a draft campaign dialing all day, 3 calls at once."""
    agent = http.post("/v1/agents", json={"name": "Booker", "opening_message": "Hi {{name}}"}).json()
    model = {"outcomes": {"answered": 0.6, "busy": 0.4}, "ring_seconds": [2, 4], "talk_seconds": [10, 30]}
    number = http.post("/v1/phone-numbers", json={"number": "+12125550100", "simulated": model}).json()
    body = {
        "name": "Spring reminders",
        "agent_id": agent["id"],
        "caller_ids": [{"phone_number_id": number["id"]}],
        "dynamic_variables": {"name": "there"},
        "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
        "pacing": {"max_concurrency": 3, "attempts_per_second": 1},
    }
    answer = http.post("/v1/campaigns", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def started_calls(http: httpx.Client, campaign_id: str) -> int:
    calls, cursor = 0, None
    while True:
        params: dict[str, Any] = {"campaign_id": campaign_id, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/calls", params=params).json()
        calls += sum(1 for c in page["data"] if c["started_at"] is not None)
        cursor = page["next_cursor"]
        if not cursor:
            return calls


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"  # type: ignore[index]


def test_the_dashboard_in_chromium(browser: Browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    upgrade(url)
    key, reader_key = new_key(url, "acme"), read_key(url, "acme")
    zone = zone_at_noon()
    rows = [f"+1212555{1000 + i:04d},Lead {i},{zone}" for i in range(LEADS)]
    rows[5:5] = ["not-a-phone,Broken,UTC", f"+12125551002,Again,{zone}", "+12125559999,Bad zone,Mars/Olympus"]
    csv_file = ("phone_number,name,timezone\n" + "\n".join(rows) + "\n").encode()
    with (
        running_server(url, engine=True, time_scale=10, stream_poll_seconds=0.2) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
    ):
        camp = setup_campaign(http)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()

        # -- sign in ------------------------------------------------------------------------------
        page.goto(f"{base}/")
        shot(page, "01-login-1280")
        sign_in(page, base, key)
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        assert key not in page.content()
        page.get_by_role("link", name="Spring reminders").click()
        expect(page.get_by_role("heading", name=re.compile("Spring reminders"), level=1)).to_be_visible()

        # -- upload a CSV with errors and see them ------------------------------------------------
        page.get_by_role("link", name="Leads and CSV upload").click()
        page.get_by_label("CSV file").set_input_files({"name": "leads.csv", "mimeType": "text/csv", "buffer": csv_file})
        page.get_by_role("button", name="Upload").click()
        report = page.locator("#import-report")
        expect(report).to_contain_text(f"{LEADS} accepted")
        expect(report).to_contain_text("2 rejected, 1 duplicate,")
        errors = page.locator("table.row-errors tbody tr")
        expect(errors).to_have_count(2)
        expect(errors.nth(0)).to_contain_text("invalid phone number 'not-a-phone'")
        expect(errors.nth(1)).to_contain_text("Mars/Olympus")
        shot(page, "02-csv-row-errors-1280")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the row errors (CSV)").click()
        saved = SHOTS.parent / "import-errors.csv"
        download.value.save_as(saved)
        lines = saved.read_text().splitlines()
        assert lines[0] == "row,error" and len(lines) == 3 and lines[1].startswith("6,invalid phone number")

        # -- start it and watch the counts change without a reload ------------------------------------
        page.get_by_role("link", name="Spring reminders").click()
        page.get_by_role("button", name="Start").click()
        expect(page.get_by_role("status")).to_have_text("Campaign started.")
        page.evaluate("window.notReloaded = true")
        completed = page.locator('dd[data-field="counts.completed"]')
        first = int(completed.inner_text())
        deadline = time.monotonic() + 30
        while int(completed.inner_text()) < first + 3:  # (the page's CSP forbids wait_for_function's eval)
            assert time.monotonic() < deadline, "the counts did not change"
            page.wait_for_timeout(100)
        assert page.evaluate("window.notReloaded") is True  # the same document: updated by server-sent events
        expect(page.locator("h1 .badge")).to_have_text("active")
        expect(page.get_by_role("button", name="Start")).to_be_hidden()
        # the chart reloads when the stream brings new counts (at most every 2 s; otherwise every 10 s)
        expect(page.locator("#chart-desc")).not_to_contain_text("0 attempts", timeout=5_000)
        shot(page, "03-campaign-live-1280")

        # -- an edit the edit matrix refuses while active, shown beside its field; "what if" ------------------
        page.get_by_label("Time zone").fill("Europe/Paris")
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#timezone-error")).to_have_text("cannot change while active; pause the campaign first")
        expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Calls at once", exact=True).fill("6")
        page.get_by_role("button", name="Forecast").click()
        expect(page.get_by_role("heading", name="With these changes")).to_be_focused()
        shot(page, "04-edit-refused-and-what-if-1280")
        page.get_by_role("link", name="Campaigns", exact=True).first.click()
        expect(page.locator("tr[data-campaign] .badge")).to_have_text("active")
        shot(page, "05-campaigns-1280")
        page.get_by_role("link", name="Spring reminders").click()

        # -- pause it and see no new call ------------------------------------------------------------
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_role("status")).to_have_text("Campaign paused: no new call starts.")
        expect(page.locator("h1 .badge")).to_have_text("paused")
        expect(page.get_by_role("button", name="Resume")).to_be_visible()
        expect(page.get_by_role("button", name="Pause")).to_be_hidden()
        at_pause = started_calls(http, camp["id"])
        page.wait_for_timeout(3_000)  # 30 s of engine time
        assert started_calls(http, camp["id"]) == at_pause
        expect(page.locator('dd[data-field="view.concurrency"]')).to_have_text("0 of 3", timeout=15_000)
        done = http.get(f"/v1/campaigns/{camp['id']}").json()["counts"]
        assert 0 < done["completed"] + done["failed"] < LEADS and done["in_progress"] == 0
        shot(page, "06-campaign-paused-1280")

        # -- a lead's history ---------------------------------------------------------------------------
        page.get_by_role("link", name="Leads and CSV upload").click()
        page.get_by_label("Status").select_option("completed")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"status=completed"))
        page.locator("table.leads tbody th a").first.click()
        expect(page.get_by_role("heading", name=re.compile(r"^Attempt 1: answered"))).to_be_visible()
        expect(page.locator(".attempt dl").first).to_contain_text("Started")
        shot(page, "07-lead-history-1280")
        page.get_by_role("link", name="Calls", exact=True).click()
        expect(page.get_by_role("heading", name="Calls", level=1)).to_be_visible()
        shot(page, "07b-calls-1280", full_page=False)
        page.get_by_role("link", name="Do-not-call", exact=True).click()
        page.get_by_role("textbox", name="Numbers", exact=True).fill("+14155550123, not-a-number")
        page.get_by_role("button", name="Add to the list").click()
        expect(page.get_by_role("status")).to_contain_text("1 added")
        expect(page.locator("table.row-errors")).to_contain_text("invalid phone number 'not-a-number'")
        shot(page, "07c-dnc-1280")
        context.close()

        # -- 390 px wide -----------------------------------------------------------------------------------
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        small = phone.new_page()
        sign_in(small, base, key)
        no_horizontal_scroll(small)
        shot(small, "08-campaigns-390")
        small.get_by_role("link", name="Spring reminders").click()
        expect(small.get_by_role("button", name="Resume")).to_be_visible()
        no_horizontal_scroll(small)
        shot(small, "09-campaign-390")
        small.goto(f"{base}/campaigns/{camp['id']}/leads?status=completed")
        no_horizontal_scroll(small)
        small.get_by_role("heading", name="Leads", exact=True).scroll_into_view_if_needed()
        shot(small, "10-leads-390", full_page=False)
        phone.close()

        # -- a read-only key ---------------------------------------------------------------------------------
        readonly = browser.new_context(viewport={"width": 1280, "height": 900})
        look = readonly.new_page()
        sign_in(look, base, reader_key)
        expect(look.get_by_text("Read-only key")).to_be_visible()
        for path in ("/", f"/campaigns/{camp['id']}", f"/campaigns/{camp['id']}/leads", "/dnc", "/webhooks", "/calls"):
            look.goto(f"{base}{path}")
            expect(look.locator("main")).to_be_visible()
            assert look.get_by_role("button", name=MUTATING).count() == 0, path
            assert look.locator("form[method=post]:not([action='/logout'])").count() == 0, path
            if path == f"/campaigns/{camp['id']}":
                expect(look.locator("#forecast")).to_contain_text(re.compile("Forecast unavailable|Completes"))
                shot(look, "11-campaign-read-only-1280")
        readonly.close()
