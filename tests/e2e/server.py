"""Run the real app under uvicorn on a free loopback port, in a thread, for e2e tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook

from dialwave.config import Settings
from dialwave.services.auth import create_key
from dialwave.store.db import Database
from dialwave.wiring import serve_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    database_url: str,
    *,
    engine: bool = False,
    time_scale: float = 1.0,
    allow_loopback: bool = False,
    **more: Any,
) -> Iterator[str]:
    """`more`: other Settings (sip_port=...)."""
    more.setdefault("stop_grace_seconds", 0)  # a test's end stops calls in flight at once
    settings = Settings(database_url=database_url, time_scale=time_scale, webhook_allow_loopback=allow_loopback, **more)
    with serving(serve_app(settings, run_engine=engine), ready_path="/healthz") as base:
        yield base


@contextmanager
def serving(app: Any, ready_path: str | None = None) -> Iterator[str]:
    """An ASGI app under uvicorn on a free loopback port, in a thread: its base URL once it serves
    (`ready_path` answering 200, or uvicorn started)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if ready_path is None and server.started:
                break
            if ready_path is not None and httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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


def new_key(database_url: str, org: str) -> str:
    from datetime import UTC, datetime

    async def run() -> str:
        db = Database(database_url)
        try:
            return (await create_key(db, org, ["read", "write"], datetime.now(UTC))).key
        finally:
            await db.dispose()

    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(run())))
    thread.start()
    thread.join()
    return result[0]


def zone_at_noon() -> str:
    """A fixed-offset zone where it is about noon right now (legal hours hold whenever the test runs)."""
    offset = 12 - datetime.now(UTC).hour  # hours east of UTC
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def live_campaign(http: httpx.Client, leads: int, answered: float, start: bool = True, **config: Any) -> dict[str, Any]:
    """An agent, a simulated number and a campaign dialing all day at 5/s, 5 at once, with `leads`
    leads in a zone where it is noon; started unless `start` is false."""
    agent = http.post("/v1/agents", json={"name": "a", "opening_message": "Hi"}).json()
    outcomes = {"answered": answered, "busy": round(1 - answered, 6)}
    model = {"outcomes": outcomes, "ring_seconds": [1, 3], "talk_seconds": [5, 20]}
    number = http.post("/v1/phone-numbers", json={"number": "+12125550100", "simulated": model}).json()
    body = {
        "name": "live",
        "agent_id": agent["id"],
        "caller_ids": [{"phone_number_id": number["id"]}],
        "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
        "pacing": {"max_concurrency": 5, "attempts_per_second": 5},
        **config,
    }
    camp: dict[str, Any] = http.post("/v1/campaigns", json=body).json()
    batch = [{"phone_number": f"+1212555{1000 + i:04d}", "timezone": zone_at_noon()} for i in range(leads)]
    assert http.post(f"/v1/campaigns/{camp['id']}/leads", json={"leads": batch}).json()["accepted"] == leads
    if start:
        assert http.post(f"/v1/campaigns/{camp['id']}/start").json()["status"] == "active"
    return camp
