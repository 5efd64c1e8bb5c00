"""`dialwave forecast` and the forecast/reconnect side of `dialwave campaigns watch`, against a local stub
of the API: the stub checks the exact request the CLI sends, answers the forecast contract, and drops the
event stream once so the watch must reconnect. The real forecast endpoint is tested in test_cli_http.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CAMPAIGN = "cmp_stub"
FORECAST = {
    "completes_at": "2031-03-04T17:30:00Z",
    "attempts": 1234,
    "outcomes": {"answered": 700, "busy": 300, "no_answer": 234},
    "hourly": [
        {"hour": "2031-03-04T09:00:00Z", "attempts": 400, "answered": 230},
        {"hour": "2031-03-04T10:00:00Z", "attempts": 834, "answered": 470},
    ],
    "basis": {"outcome_mix": "observed", "observed_calls": 321},
}


def state(status: str, completed: int, attempts_last_minute: int = 6) -> dict[str, Any]:
    counts = {"total": 10, "queued": 10 - completed, "completed": completed, "failed": 0, "skipped": 0}
    live = {"in_flight": 2, "claimed": 1, "attempts_last_minute": attempts_last_minute}
    return {"id": CAMPAIGN, "name": "stub", "status": status, "counts": counts, "live": live}


class Stub:
    """What the stub was asked."""

    def __init__(self) -> None:
        self.forecast_bodies: list[Any] = []
        self.streams = 0


@pytest.fixture
def stub() -> Iterator[tuple[str, Stub]]:
    seen = Stub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def event(self, name: str, data: dict[str, Any]) -> None:
            self.chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != "Bearer dw_live_stub":
                self.answer(401, {"error": {"message": "invalid API key"}})
            elif self.path == f"/v1/campaigns/{CAMPAIGN}/forecast":
                seen.forecast_bodies.append(json.loads(body))
                self.answer(200, FORECAST)
            elif self.path == "/v1/campaigns/cmp_other/forecast":
                self.answer(404, {"error": {"message": "no campaign 'cmp_other'", "fields": {}}})
            else:
                self.answer(405, {"error": {"message": "Method Not Allowed"}})

        def do_GET(self) -> None:
            if self.path.startswith(f"/v1/campaigns/{CAMPAIGN}/activity"):
                minute = {"minute": "2031-03-04T09:00:00Z", "attempts": 3, "outcomes": {"answered": 2, "busy": 1}}
                self.answer(200, {"data": [minute]})
                return
            if self.path != f"/v1/campaigns/{CAMPAIGN}/stream":
                self.answer(404, {"error": {"message": "Not Found"}})
                return
            seen.streams += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if seen.streams == 1:
                self.event("campaign", state("active", 3))
                self.close_connection = True  # dropped mid-stream: no last chunk
                return
            self.event("campaign", state("active", 6))
            self.event("heartbeat", {})
            self.event("campaign", state("completed", 10, 0))
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()


def dialwave(*args: str, url: str, key: str = "dw_live_stub") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIALWAVE_URL": url, "DIALWAVE_API_KEY": key}
    env.pop("DIALWAVE_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "dialwave.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_forecast_sends_the_changes_and_prints_the_answer(stub: tuple[str, Stub]) -> None:
    url, seen = stub
    sets = [
        "--set",
        "pacing.max_concurrency=40",
        "--set",
        'schedule.windows=[{"start": "09:00", "end": "17:00"}]',
        "--set",
        "schedule.timezone=Europe/Paris",
    ]
    done = dialwave("forecast", CAMPAIGN, *sets, url=url)
    assert done.returncode == 0, done.stderr
    assert seen.forecast_bodies == [
        {
            "changes": {
                "pacing": {"max_concurrency": 40},
                "schedule": {"windows": [{"start": "09:00", "end": "17:00"}], "timezone": "Europe/Paris"},
            }
        }
    ]
    out = done.stdout
    assert "completes at  2031-03-04 17:30:00Z" in out and "attempts      1,234" in out
    assert "answered" in out and "57%" in out  # 700 of 1234
    assert "2031-03-04 10:00:00Z" in out and "834" in out  # the hourly table
    assert "outcome_mix: observed" in out and "observed_calls: 321" in out

    as_json = dialwave("forecast", CAMPAIGN, "--json", url=url)
    assert json.loads(as_json.stdout) == FORECAST and seen.forecast_bodies[-1] == {}  # no changes: as it is

    missing = dialwave("forecast", "cmp_other", url=url)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: 404 no campaign 'cmp_other'"
    bad = dialwave("forecast", CAMPAIGN, "--set", "pacing", url=url)
    assert bad.returncode == 2 and "expected PATH=VALUE" in bad.stderr and "Traceback" not in bad.stderr


def test_forecast_on_a_server_without_the_endpoint_says_so(stub: tuple[str, Stub]) -> None:
    url, _ = stub
    done = dialwave("forecast", "cmp_old", url=url)  # the stub answers 405, as a server without the route
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "has no forecast endpoint" in lines[0] and lines[1].startswith("hint: ")


def test_watch_reconnects_after_a_dropped_stream_and_asks_the_forecast(stub: tuple[str, Stub]) -> None:
    url, seen = stub
    done = dialwave("campaigns", "watch", CAMPAIGN, url=url)
    assert done.returncode == 0, done.stderr
    assert seen.streams == 2  # dropped once, reconnected
    assert seen.forecast_bodies == [{}]  # asked once at the start (again after 60 s)
    assert "reconnected 1x" in done.stdout and "10/10 leads done" in done.stdout
    assert "answered 2  busy 1" in done.stdout  # the last hour's call outcomes
    assert f"campaign {CAMPAIGN} completed" in done.stdout
