"""A Twilio call placed by a `dialwave worker` process, its status callbacks received by a separate API
process without an engine (this test's, as `serve --no-engine` runs it) on PostgreSQL: the API process
stores the verified callback and notifies, and the worker holding the call applies it, so the call is
finalized at once (not at the stuck-call check, 60 s after the call's longest allowed duration). A
runtime's result posted to the API process reaches the worker the same way, before the call ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


@dataclass
class Cluster:
    url: str  # the database
    base: str  # the API process
    key: str
    campaign_id: str
    call_id: str
    sid: str  # Twilio's id of the call

    def callback(self, status: str, **extra: str) -> float:
        """Twilio's signed status callback, to the API process: when it answered."""
        with httpx.Client(base_url=self.base, timeout=30) as twilio:
            form, headers = signed_callback(PUBLIC, self.call_id, {"CallSid": self.sid, "CallStatus": status, **extra})
            answer = twilio.post(f"/v1/carriers/twilio/status/{self.call_id}", data=form, headers=headers)
            assert answer.status_code == 204, answer.text
        return time.monotonic()

    def call(self) -> dict[str, Any]:
        return query(self.url, "SELECT * FROM calls WHERE id = $1", self.call_id)[0]


@contextmanager
def cluster(tmp_path: Path, **campaign_extra: Any) -> Iterator[Cluster]:
    """A worker process and an API process (this one's, no engine) on a fresh PostgreSQL database, and one
    Twilio call the worker placed."""
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
                **campaign_extra,
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
        yield Cluster(url, base, key, cid, str(call["id"]), sid)


def test_an_end_received_by_an_api_process_reaches_the_worker_holding_the_call(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        for status, extra in (("ringing", {}), ("in-progress", {}), ("completed", {"CallDuration": "5"})):
            sent = c.callback(status, **extra)

        wait_for("the call's end", lambda: c.call()["status"] == "ended", seconds=10)
        took = time.monotonic() - sent
        row = c.call()
        assert row["answered_at"] is not None and row["outcome"] in ("answered", "short_duration")
        assert took < 3.0, f"the end reached the worker after {took:.1f} s"  # ~0.1-0.3 s here; the poll is 1 s
        assert query(c.url, "SELECT count(*) AS n FROM carrier_events")[0]["n"] == 0  # each taken once
        print(f"call finalized {took:.2f} s after the API process answered Twilio's callback")
        leads = query(c.url, "SELECT status FROM leads WHERE campaign_id = $1", c.campaign_id)
        assert leads[0]["status"] == "completed"


def test_a_result_posted_to_an_api_process_reaches_the_worker_before_the_end(tmp_path: Path) -> None:
    """The runtime asks for a callback while the call is up, through the API process: the worker holding
    the call takes the notice while the call is up, so the end schedules the callback. (Decided without
    it, the call would complete the lead and `auto_add_on: completed` would put the number on the DNC list,
    skipping the callback.)"""
    callback_at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    with cluster(tmp_path, retry={"max_attempts": 2}, dnc={"auto_add_on": ["opted_out", "completed"]}) as c:
        c.callback("ringing")
        c.callback("in-progress")
        wait_for("the answer", lambda: c.call()["status"] == "in_call", seconds=10)
        with httpx.Client(base_url=c.base, headers={"Authorization": f"Bearer {c.key}"}, timeout=30) as http:
            posted = http.post(f"/v1/calls/{c.call_id}/result", json={"callback_at": callback_at.isoformat()})
            assert posted.status_code == 200, posted.text
        sent = time.monotonic()
        wait_for("the notice taken", lambda: query(c.url, "SELECT count(*) AS n FROM carrier_events")[0]["n"] == 0)
        print(f"the worker took the result's notice {time.monotonic() - sent:.2f} s after the post answered")
        c.callback("completed", CallDuration="30")
        wait_for("the call's end", lambda: c.call()["status"] == "ended", seconds=10)
        [lead] = query(c.url, "SELECT status, reason, next_attempt_at FROM leads WHERE campaign_id = $1", c.campaign_id)
        assert lead["status"] == "retry_pending" and lead["reason"].startswith("callback requested"), lead
        assert lead["next_attempt_at"] >= callback_at
        assert c.call()["reason"].startswith("callback requested")  # decided at the end, not after it
        assert query(c.url, "SELECT count(*) AS n FROM dnc_numbers")[0]["n"] == 0
