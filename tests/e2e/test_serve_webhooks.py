"""`dialwave serve` delivers webhooks in real time: a campaign dialed by the server's engine reaches a
receiver (a plain HTTP server in a thread) as signed events, verified with `standardwebhooks`."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from dialwave.store.migrate import upgrade
from tests.e2e.server import new_key, running_server
from tests.e2e.test_serve_engine import zone_at_noon


@contextmanager
def receiver(secret: list[str], got: list[dict[str, Any]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                got.append(Webhook(secret[0]).verify(body, dict(self.headers)))
                self.send_response(204)
            except Exception:
                self.send_response(401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


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
        agent = http.post("/v1/agents", json={"name": "a", "opening_message": "Hi"}).json()
        model = {"outcomes": {"answered": 0.8, "busy": 0.2}, "ring_seconds": [1, 3], "talk_seconds": [5, 20]}
        number = http.post("/v1/phone-numbers", json={"number": "+12125550100", "simulated": model}).json()
        camp = http.post(
            "/v1/campaigns",
            json={
                "name": "live",
                "agent_id": agent["id"],
                "caller_ids": [{"phone_number_id": number["id"]}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "pacing": {"max_concurrency": 5, "attempts_per_second": 5},
                "webhook": {"metadata": {"source": "e2e"}},
            },
        ).json()
        leads = [{"phone_number": f"+1212555{1000 + i:04d}", "timezone": zone_at_noon()} for i in range(8)]
        assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": leads}).json()["accepted"] == 8
        assert http.post(f"/v1/campaigns/{camp['id']}/start").status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e["type"] == "campaign.completed" for e in got):
            time.sleep(0.2)
        calls = http.get("/v1/calls", params={"campaign_id": camp["id"], "limit": 500}).json()["data"]
    kinds = Counter(e["type"] for e in got)
    assert kinds["campaign.completed"] == 1, kinds
    assert kinds["call.ended"] == len(calls) and kinds["lead.completed"] + kinds["lead.failed"] == 8
    assert len({e["id"] for e in got}) == len(got)  # each event once
    assert all(e["metadata"] == {"source": "e2e"} for e in got if e["data"].get("campaign_id") == camp["id"])
    assert json.loads(json.dumps(got))  # plain JSON all the way
