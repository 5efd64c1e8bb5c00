"""A Twilio call placed by a `dialwave worker` process, its status callbacks received by a separate API
process without an engine (this test's, as `serve --no-engine` runs it) on PostgreSQL: the API process
stores the verified callback and notifies, and the worker holding the call applies it, so the call is
finalized at once (not at the stuck-call check, 60 s after the call's longest allowed duration)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.conftest import _pg_base, migrated_pg_database
from tests.e2e.server import new_key, running_server, serving, zone_at_noon
from tests.e2e.test_workers_processes import env_for, process, query, wait_started
from tests.twilio_fake import ACCOUNT, TOKEN, FakeTwilio, signed_callback

PUBLIC = "https://dialwave.example.com"  # what Twilio is given; the test posts to the API process itself
LEAD = "+12125557001"


def wait_for(what: str, check: Callable[[], object], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_end_received_by_an_api_process_reaches_the_worker_holding_the_call(tmp_path: Path) -> None:
    fake = FakeTwilio()
    with migrated_pg_database("dw_relay") as name, ExitStack() as stack:
        twilio_base = stack.enter_context(serving(fake.app()))
        url = f"{_pg_base()}/{name}"
        env = {
            **env_for(url, 1.0, datetime.now(UTC)),
            "DIALWAVE_TIME_SCALE": "1",
            "DIALWAVE_PUBLIC_URL": PUBLIC,
            "DIALWAVE_TWILIO_API_BASE": twilio_base,
        }
        t0 = time.monotonic()
        worker = stack.enter_context(process(["worker", "--no-webhooks"], env, tmp_path / "worker.log"))
        # the API process: this one (uvicorn in a thread, no engine), the worker above another
        base = stack.enter_context(
            running_server(url, engine=False, public_url=PUBLIC, twilio_api_base=twilio_base, webhooks=False)
        )
        wait_started(tmp_path / "worker.log", worker)
        print(f"started in {time.monotonic() - t0:.1f} s")
        key = new_key(url, "relay")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            agent = http.post("/v1/agents", json={"name": "a", "opening_message": "Hi"}).json()
            body = {
                "number": "+12125550100",
                "provider": "twilio",
                "twilio": {"account_sid": ACCOUNT, "auth_token": TOKEN},
            }
            number = http.post("/v1/phone-numbers", json=body).json()
            campaign = {
                "name": "relay",
                "agent_id": agent["id"],
                "caller_ids": [{"phone_number_id": number["id"]}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "retry": {"max_attempts": 1},
            }
            cid = http.post("/v1/campaigns", json=campaign).json()["id"]
            lead = {"phone_number": LEAD, "timezone": zone_at_noon()}
            assert http.post(f"/v1/campaigns/{cid}/leads", json={"leads": [lead]}).json()["accepted"] == 1
            assert http.post(f"/v1/campaigns/{cid}/start").json()["status"] == "active"

        def dialed() -> list[dict[str, object]]:
            return query(url, "SELECT * FROM calls WHERE campaign_id = $1 AND provider_call_id IS NOT NULL", cid)

        wait_for("the worker's dial", lambda: fake.created and dialed())
        call = dialed()[0]
        print(f"dialed at {time.monotonic() - t0:.1f} s")
        sid = fake.sid_for(LEAD)
        assert call["provider_call_id"] == sid
        with httpx.Client(base_url=base, timeout=30) as twilio:
            for status, extra in (("ringing", {}), ("in-progress", {}), ("completed", {"CallDuration": "5"})):
                form, headers = signed_callback(
                    PUBLIC, str(call["id"]), {"CallSid": sid, "CallStatus": status, **extra}
                )
                answer = twilio.post(f"/v1/carriers/twilio/status/{call['id']}", data=form, headers=headers)
                assert answer.status_code == 204, answer.text
                sent = time.monotonic()

        def ended() -> bool:
            row = query(url, "SELECT status, outcome FROM calls WHERE id = $1", call["id"])[0]
            return row["status"] == "ended"

        wait_for("the call's end", ended, seconds=10)
        took = time.monotonic() - sent
        row = query(url, "SELECT status, outcome, answered_at FROM calls WHERE id = $1", call["id"])[0]
        assert row["answered_at"] is not None and row["outcome"] in ("answered", "short_duration")
        assert took < 3.0, f"the end reached the worker after {took:.1f} s"  # ~0.1-0.3 s here; the poll is 1 s
        assert query(url, "SELECT count(*) AS n FROM carrier_events")[0]["n"] == 0  # each taken once
        print(f"call finalized {took:.2f} s after the API process answered Twilio's callback")
        assert query(url, "SELECT status FROM leads WHERE campaign_id = $1", cid)[0]["status"] == "completed"
