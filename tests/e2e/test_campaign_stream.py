"""GET /v1/campaigns/{id}/stream on a live server: the campaign's state first, again whenever its counts
or status change, heartbeats while nothing does,, and the stream ends with the finished campaign."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx

from dialwave.store.migrate import upgrade
from tests.e2e.server import live_campaign, new_key, running_server


def read_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_the_stream_follows_a_campaign_to_its_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stream.db'}"
    upgrade(url)
    key = new_key(url, "acme")
    headers = {"Authorization": f"Bearer {key}"}
    settings = {"stream_poll_seconds": 0.1, "stream_heartbeat_seconds": 0.3}
    with (
        running_server(url, engine=True, time_scale=30, **settings) as base,
        httpx.Client(base_url=base, headers=headers, timeout=60) as http,
    ):
        assert http.get("/v1/campaigns/cmp_nope/stream").status_code == 404
        assert httpx.get(f"{base}/v1/campaigns/cmp_nope/stream").status_code == 401
        camp = live_campaign(http, 12, answered=1.0)
        with http.stream("GET", f"/v1/campaigns/{camp['id']}/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response)  # returns when the server ends the stream
        draft = http.post("/v1/campaigns", json={"name": "quiet"}).json()
        with http.stream("GET", f"/v1/campaigns/{draft['id']}/stream") as response:
            lines = response.iter_lines()
            assert next(lines) == "event: campaign"
            quiet = [line for line, _ in zip(lines, range(6), strict=False)]
        assert "event: heartbeat" in quiet  # nothing changes in a draft: heartbeats
    states = [data for name, data in events if name == "campaign"]
    assert states[0]["id"] == camp["id"] and states[0]["status"] == "active"
    assert states[-1]["status"] == "completed" and states[-1]["counts"]["completed"] == 12
    completed = [s["counts"]["completed"] for s in states]
    assert completed == sorted(completed) and len(set(completed)) >= 3  # seen progressing, never backwards
    assert max(s["live"]["in_flight"] for s in states) >= 1
    assert all(s["live"]["in_flight"] <= 5 for s in states)  # the campaign's max_concurrency
    assert all(a != b for a, b in itertools.pairwise(states))  # only changes are sent
