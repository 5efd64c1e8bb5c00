"""Idempotency across two API processes (`dialwave serve --no-engine`) on one PostgreSQL: concurrent
requests with one key, sent to both processes, create one object."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import free_port, new_key

DIALWAVE = str(Path(sys.executable).with_name("dialwave"))


@contextmanager
def api_process(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DIALWAVE_DATABASE_URL": database_url, "DIALWAVE_LOG_LEVEL": "warning"}
    command = [DIALWAVE, "serve", "--no-engine", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"dialwave serve did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite serves from one process
def test_one_key_sent_to_two_processes_creates_one_object(db_url: str) -> None:
    key = new_key(db_url, "two-processes")
    headers = {"Authorization": f"Bearer {key}"}
    with api_process(db_url) as first, api_process(db_url) as second:

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                sends = [
                    client.post(
                        f"{base}/v1/agents",
                        json={"name": f"agent-{k}"},
                        headers={**headers, "Idempotency-Key": f"key-{k}"},
                    )
                    for k in range(15)
                    for base in (first, second, first, second)
                ]
                return list(await asyncio.gather(*sends))

        answers = asyncio.run(fire())
        assert {r.status_code for r in answers} <= {201, 409}
        listed = httpx.get(f"{first}/v1/agents", params={"limit": 500}, headers=headers).json()["data"]
        assert sorted(a["name"] for a in listed) == sorted(f"agent-{k}" for k in range(15))
