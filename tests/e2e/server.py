"""Run the real app under uvicorn on a free loopback port, in a thread, for e2e tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from dialwave.api.app import create_app
from dialwave.config import Settings
from dialwave.services.auth import create_key
from dialwave.store.db import Database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    database_url: str, *, engine: bool = False, time_scale: float = 1.0, allow_loopback: bool = False
) -> Iterator[str]:
    settings = Settings(database_url=database_url, time_scale=time_scale, webhook_allow_loopback=allow_loopback)
    port = free_port()
    app = create_app(settings, run_engine=engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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
