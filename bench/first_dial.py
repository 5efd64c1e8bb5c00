"""Seconds from `make run` on a fresh clone to the demo campaign's first dial.

    python bench/first_dial.py [--repo .] [--keep-venv PATH]

Clones the repository's HEAD into a temporary directory, runs `make run PORT=<free port>` there (which
installs its virtualenv, migrates, sets up the demo and serves), and prints the seconds from the command
to: the demo's output (install + migrate + demo), the server answering /healthz, and the first call
started (`GET /v1/calls?campaign_id=`). `--keep-venv PATH` copies an installed virtualenv in first, to
time the steps after the install alone."""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".")
    parser.add_argument("--keep-venv")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="dwfirst")
    clone = os.path.join(work, "dialwave")
    subprocess.run(["git", "clone", "--quiet", os.path.abspath(args.repo), clone], check=True)
    if args.keep_venv:
        shutil.copytree(args.keep_venv, os.path.join(clone, ".venv"), symlinks=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALWAVE_")}
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: dict[str, float] = {}
    found: dict[str, str] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if m := re.search(r"API key:\s+(\S+)", line):
                found["key"] = m.group(1)
            if m := re.search(r"Campaign:\s+(\S+)", line):
                found["campaign"] = m.group(1)
                seen.setdefault("demo set up", time.perf_counter() - start)

    threading.Thread(target=read, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.perf_counter() + 1200
        while time.perf_counter() < deadline and "first dial" not in seen:
            try:
                if "server up" not in seen and httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    seen["server up"] = time.perf_counter() - start
                if "server up" in seen and "campaign" in found:
                    calls = httpx.get(
                        f"{base}/v1/calls",
                        params={"campaign_id": found["campaign"], "limit": 5},
                        headers={"Authorization": f"Bearer {found['key']}"},
                        timeout=5,
                    ).json()["data"]
                    if any(c["started_at"] for c in calls):
                        seen["first dial"] = time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    venv = "copied" if args.keep_venv else "installed by make"
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()}, {os.cpu_count()} CPUs, venv {venv}")
    for name in ("demo set up", "server up", "first dial"):
        print(f"{name:<14} {seen.get(name, float('nan')):8.1f} s after `make run`")
    if "server up" in seen and "first dial" in seen:
        print(f"first dial     {seen['first dial'] - seen['server up']:8.1f} s after the server was up")


if __name__ == "__main__":
    main()
