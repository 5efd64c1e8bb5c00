"""`dialwave serve` runs the dispatcher beside the API; --time-scale speeds up the simulated carrier."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dialwave.store.migrate import upgrade
from tests.e2e.server import live_campaign, new_key, running_server


def test_started_campaign_is_dialed_to_completion_by_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    key = new_key(url, "acme")
    headers = {"Authorization": f"Bearer {key}"}
    with running_server(url, engine=True, time_scale=60) as base, httpx.Client(base_url=base, headers=headers) as http:
        retry = {"on": {"busy": {"max_retries": 1, "interval_minutes": [1]}}}
        camp = live_campaign(http, 20, answered=0.7, retry=retry)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = http.get(f"/v1/campaigns/{camp['id']}").json()
            if state["status"] == "completed":
                break
            time.sleep(0.2)
        assert state["status"] == "completed", state
        assert state["counts"]["completed"] + state["counts"]["failed"] == 20
        calls = http.get("/v1/calls", params={"campaign_id": camp["id"], "limit": 500}).json()["data"]
        assert len(calls) >= 20 and all(c["status"] == "ended" for c in calls)
        lead = http.get(f"/v1/campaigns/{camp['id']}/leads", params={"limit": 1}).json()["data"][0]
        assert lead["attempts"] >= 1 and lead["last_outcome"] in ("answered", "no_conversion", "busy", "short_duration")


def test_time_scale_is_refused_with_a_real_carrier(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    key = new_key(url, "acme")
    with running_server(url) as base:
        body = {"number": "+12125550100", "provider": "sip", "sip": {"trunk_uri": "sip:trunk.example.com"}}
        response = httpx.post(f"{base}/v1/phone-numbers", json=body, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 201, response.text
    env = {**os.environ, "DIALWAVE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "dialwave.cli", "serve", "--port", "0", "--time-scale", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--time-scale is for the simulated carrier only" in done.stdout + done.stderr


def test_a_second_engine_on_a_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    upgrade(url)
    env = {**os.environ, "DIALWAVE_DATABASE_URL": url}
    worker = [sys.executable, "-m", "dialwave.cli", "worker", "--no-webhooks"]
    with running_server(url, engine=True):
        done = subprocess.run(worker, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "another dialwave engine already runs on the SQLite database" in done.stderr
    assert "use PostgreSQL for several workers" in done.stderr
    several = [sys.executable, "-m", "dialwave.cli", "serve", "--workers", "2"]
    done = subprocess.run(several, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--no-engine" in done.stdout + done.stderr
