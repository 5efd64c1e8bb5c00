"""Start `dialwave serve` as a subprocess for benchmarks, with a fresh database and an API key."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import psutil


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    key: str
    process: psutil.Process
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def watch_memory(self) -> None:
        def poll() -> None:
            while not self._stop.is_set():
                try:
                    rss = self.process.memory_info().rss
                except psutil.Error:
                    return
                self.peak_rss = max(self.peak_rss, rss)
                time.sleep(0.05)

        threading.Thread(target=poll, daemon=True).start()


@contextmanager
def dialwave_server(database_url: str | None) -> Iterator[Server]:
    workdir = tempfile.mkdtemp(prefix="dwbench")
    url = database_url or f"sqlite:///{workdir}/bench.db"
    # No per-key rate limit: these scripts measure throughput, not the limiter.
    env = {
        **os.environ,
        "DIALWAVE_DATABASE_URL": url,
        "DIALWAVE_LOG_LEVEL": "warning",
        "DIALWAVE_RATE_LIMIT_PER_SECOND": "0",
    }
    cli = [sys.executable, "-m", "dialwave.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    key = json.loads(
        subprocess.run(
            [*cli, "keys", "create", "--org", f"bench{int(time.time())}", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["key"]
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    server = Server(base, key, psutil.Process(proc.pid))
    try:
        yield server
    finally:
        server._stop.set()
        proc.terminate()
        proc.wait(timeout=20)


def make_campaign(server: Server, name: str) -> str:
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as client:
        agent = client.post("/v1/agents", json={"name": "Bench", "required_variables": ["name"]}).json()
        number = client.post("/v1/phone-numbers", json={"number": "+14155550100"}).json()
        body = {"name": name, "agent_id": agent["id"], "caller_ids": [{"phone_number_id": number["id"]}]}
        response = client.post("/v1/campaigns", json=body)
        response.raise_for_status()
        return str(response.json()["id"])


def write_csv(path: str, rows: int) -> int:
    """rows unique, valid US numbers with two variables; returns the file size."""
    areas = ("415", "212", "646", "312", "617", "206", "303", "512")
    with open(path, "w") as out:
        out.write("phone_number,name,plan\n")
        for i in range(rows):
            area = areas[i % len(areas)]
            rest = i // len(areas)
            out.write(f"+1{area}{200 + rest // 10000}{rest % 10000:04d},Name{i},gold\n")
    return os.path.getsize(path)
