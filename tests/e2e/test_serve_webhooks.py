"""`dialwave serve` delivers webhooks in real time: a campaign dialed by the server's engine reaches a
receiver (a plain HTTP server in a thread) as signed events, verified with `standardwebhooks`."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from dialwave.store.migrate import upgrade
from tests.e2e.server import live_campaign, new_key, receiver, running_server


def test_the_server_delivers_a_campaigns_events_as_they_happen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    headers = {"Authorization": f"Bearer {new_key(url, 'acme')}"}
    secret: list[str] = []
    got: list[dict[str, Any]] = []
    with (
        receiver(secret, got) as hook_url,
        running_server(url, engine=True, time_scale=60, allow_loopback=True) as base,
        httpx.Client(base_url=base, headers=headers) as http,
    ):
        endpoint = http.post("/v1/webhook-endpoints", json={"url": hook_url})
        assert endpoint.status_code == 201, endpoint.text
        secret.append(endpoint.json()["secret"])
        # busy leads are retried a minute later (1 s at this scale; the default 30 minutes took 30 s)
        retry = {"on": {"busy": {"interval_minutes": [1]}}}
        camp = live_campaign(http, 8, answered=0.8, webhook={"metadata": {"source": "e2e"}}, retry=retry)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e["type"] == "campaign.completed" for e in got):
            time.sleep(0.2)
        calls = http.get("/v1/calls", params={"campaign_id": camp["id"], "limit": 500}).json()["data"]

        # deliveries are concurrent: the last calls' call.ended may arrive just after campaign.completed
        def delivered() -> bool:
            kinds = Counter(e["type"] for e in got)
            return kinds["call.ended"] >= len(calls) and kinds["lead.completed"] + kinds["lead.failed"] >= 8

        while time.monotonic() < deadline and not delivered():
            time.sleep(0.2)
    kinds = Counter(e["type"] for e in got)
    assert kinds["campaign.completed"] == 1, kinds
    assert kinds["call.ended"] == len(calls) and kinds["lead.completed"] + kinds["lead.failed"] == 8
    assert len({e["id"] for e in got}) == len(got)  # each event once
    assert all(e["metadata"] == {"source": "e2e"} for e in got if e["data"].get("campaign_id") == camp["id"])
    assert json.loads(json.dumps(got))  # plain JSON all the way
