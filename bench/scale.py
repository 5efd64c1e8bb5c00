"""Scaling over processes on one PostgreSQL: engine decisions/s with 1 and 2 `dialwave worker` processes,
and API requests/s at p99 < 25 ms (open loop) with `dialwave serve --no-engine --workers 1` and `2`.

    python bench/scale.py [--parts engine,api] [--campaigns 16] [--leads 6000] [--orgs 1] [--warmup 8]
                          [--window 15] [--rounds 2] [--rates 10,20,...] [--step-seconds 6] [--database-url postgresql://.../test]

1. Engine. A fresh database; `--campaigns` campaigns of `--leads` leads each, dialing all day at the
   maximum pace (500 attempts/s, 1,000 at once), every one on its own zero-latency simulated number
   (every call answered and ended at once). The workers start first, then the campaigns, so the workers
   split them (a fair share each). With `--orgs N` the campaigns are spread over N organizations: a
   grant of starts takes a lock per organization (engine/slots.py), so one organization's grants are
   serialised across workers, and different organizations' run in parallel. A decision is an attempt
   started: the calls whose `started_at` falls in a steady window (after `--warmup` seconds), counted
   in the database.
2. API. A fresh database, 4 campaigns (drafts) of 1,000 leads. An open-loop load: requests sent on a
   fixed schedule at R per second, whatever the answers; a request's latency counts from its scheduled
   send time, so a server (or a generator) that falls behind shows as latency (no coordinated omission).
   The mix: 40% GET a campaign, 30% list 50 leads, 20% POST a lead, 10% PATCH the pacing. The rate is
   stepped up until the median passes 50 ms (saturated: requests queue) or an error. Printed: the
   highest rate whose p99 was under 25 ms, and the rate where it saturated. On a shared machine the
   p99 of a few hundred requests is noisy: a lower rate may miss 25 ms that a higher one met.

The load generator (this process: aiohttp on one event loop) runs on the same 2 cores as PostgreSQL and
the processes measured. Its CPU is measured and printed beside theirs, with the whole machine's (other
work on the machine shows as "other")."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import httpx
import psutil

sys.path.insert(0, os.path.dirname(__file__))
from _cpu import Cpu, CpuMeter

PG = os.environ.get("DIALWAVE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
DIALWAVE = str(Path(sys.executable).with_name("dialwave"))
P99_LIMIT_MS = 25.0
MIX = [0.4, 0.7, 0.9]  # cumulative shares: GET a campaign, list leads, POST a lead (the rest: PATCH)
SATURATED_MS = 50.0  # a median above this: requests queue, the rate is past the saturation point
AREAS = ("212", "646", "415", "312", "617", "206", "303", "512", "718", "917")
ZERO = {"outcomes": {"answered": 1.0}, "ring_seconds": [0, 0], "talk_seconds": [0, 0]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def zone_at_noon() -> str:
    offset = 12 - datetime.now(UTC).hour
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"dw_scale_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = PG.rsplit("/", 1)[0] + "/" + name
    try:
        subprocess.run([DIALWAVE, "migrate"], env=env_for(url), check=True, capture_output=True)
        yield url
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def env_for(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DIALWAVE_DATABASE_URL": url,
        "DIALWAVE_LOG_LEVEL": "warning",
        "DIALWAVE_RATE_LIMIT_PER_SECOND": "0",  # throughput, not the limiter
        "DIALWAVE_WEBHOOKS": "false",
        "DIALWAVE_METRICS_ENABLED": "false",
        "DIALWAVE_STOP_GRACE_SECONDS": "0",
    }


@contextmanager
def started(args: list[str], url: str, log: Path) -> Iterator[psutil.Process]:
    with log.open("wb") as out:
        proc = subprocess.Popen([DIALWAVE, *args], env=env_for(url), stdout=out, stderr=subprocess.STDOUT)
        try:
            yield psutil.Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def api_key(url: str, org: str = "scale") -> str:
    out = subprocess.run(
        [DIALWAVE, "keys", "create", "--org", org, "--json"], env=env_for(url), check=True, capture_output=True
    )
    return str(json.loads(out.stdout)["key"])


def wait_healthy(base: str, proc: psutil.Process) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE, "the API process exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API did not start")


def wait_log(log: Path, text: bytes) -> None:
    deadline = time.monotonic() + 120
    while text not in log.read_bytes():
        if time.monotonic() > deadline:
            raise RuntimeError(log.read_text())
        time.sleep(0.1)


def count(url: str, sql: str, *args: object) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


# --- 1. engine decisions/s --------------------------------------------------------------------------------


def setup_campaigns(base: str, key: str, campaigns: int, leads: int, first_n: int = 0) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "opening_message": "Hi"}).json()
        for n in range(first_n, first_n + campaigns):
            number = {"number": f"+1212555{n:04d}", "simulated": ZERO}
            number_id = http.post("/v1/phone-numbers", json=number).json()["id"]
            body = {
                "name": f"scale {n}",
                "agent_id": agent["id"],
                "caller_ids": [{"phone_number_id": number_id}],
                "schedule": {"windows": [{"start": "00:00", "end": "24:00"}]},
                "pacing": {"max_concurrency": 1000, "attempts_per_second": 500},
            }
            response = http.post("/v1/campaigns", json=body)
            response.raise_for_status()
            cid = response.json()["id"]
            zone = zone_at_noon()
            area, exchange = AREAS[n % len(AREAS)], 200 + 20 * (n // len(AREAS))
            for first in range(0, leads, 10_000):
                rows = [
                    {"phone_number": f"+1{area}{exchange + j // 10_000}{j % 10_000:04d}", "timezone": zone}
                    for j in range(first, min(leads, first + 10_000))
                ]
                answer = http.post(f"/v1/campaigns/{cid}/leads", json={"leads": rows})
                assert answer.status_code == 200 and answer.json()["accepted"] == len(rows), answer.text[:500]
            ids.append(cid)
    return ids


def engine_run(workers: int, args: argparse.Namespace, logs: Path) -> tuple[float, Cpu, int]:
    with fresh_database() as url, ExitStack() as stack:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = stack.enter_context(started(["serve", "--no-engine", "--port", str(port)], url, logs / "setup.log"))
        wait_healthy(base, api)
        each = args.campaigns // args.orgs  # campaigns spread over organizations (one grant lock each)
        ids: list[tuple[str, str]] = []  # (key, campaign)
        for org in range(args.orgs):
            key = api_key(url, f"scale{org}")
            ids += [(key, cid) for cid in setup_campaigns(base, key, each, args.leads, org * each)]
        procs = []
        for i in range(workers):
            log = logs / f"worker{workers}_{i}.log"
            procs.append(stack.enter_context(started(["worker", "--no-webhooks"], url, log)))
            wait_log(log, b"worker started")
        with httpx.Client(base_url=base, timeout=60) as http:
            for i, (key, cid) in enumerate(ids):
                answer = http.post(f"/v1/campaigns/{cid}/start", headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200, answer.text
                if i == 0:  # every worker has refreshed once and counts as live before the rest start
                    time.sleep(2.5)
        time.sleep(args.warmup)
        t0 = datetime.now(UTC)
        with CpuMeter(procs) as meter:
            time.sleep(args.window)
        t1 = datetime.now(UTC)
        time.sleep(1)  # the workers' buffered writes (group commit every 100 ms) are in
        # started_at is engine time, the system clock here (no time scale)
        begun = count(url, "SELECT count(*) FROM calls WHERE started_at >= $1 AND started_at < $2", t0, t1)
        left = count(url, "SELECT count(*) FROM leads WHERE status = 'queued'")
        shares = ", ".join(f"{c:.2f}" for c in meter.each)
        print(f"    each worker's CPU (cores): {shares}")
        return begun / (t1 - t0).total_seconds(), meter.cpu, left


# --- 2. API requests/s at p99 < 25 ms ---------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    sent: int
    errors: int
    p50: float
    p99: float
    lag99: float  # the generator's own lateness (send time - scheduled time), p99, ms
    cpu: Cpu


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def open_loop(
    session: aiohttp.ClientSession, ids: list[str], rate: float, seconds: float, serial: list[int]
) -> tuple[list[float], list[float], int]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0
    rng = random.Random(int(rate))

    async def one(scheduled: float) -> None:
        nonlocal errors
        lags.append(loop.time() - scheduled)
        cid = rng.choice(ids)
        draw = rng.random()
        try:
            if draw < MIX[0]:
                request = session.get(f"/v1/campaigns/{cid}")
            elif draw < MIX[1]:
                request = session.get(f"/v1/campaigns/{cid}/leads?limit=50")
            elif draw < MIX[2]:
                serial[0] += 1
                j = serial[0]
                lead = {"phone_number": f"+1646{200 + j // 10_000:03d}{j % 10_000:04d}", "timezone": "America/New_York"}
                request = session.post(f"/v1/campaigns/{cid}/leads", json={"leads": [lead]})
            else:
                request = session.patch(
                    f"/v1/campaigns/{cid}", json={"pacing": {"attempts_per_second": rng.randint(1, 9)}}
                )
            async with request as response:
                await response.read()
                errors += response.status >= 400
        except (aiohttp.ClientError, TimeoutError):
            errors += 1
        latencies.append(loop.time() - scheduled)

    start = loop.time() + 0.05
    total = int(rate * seconds)
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return latencies, lags, errors


def api_run(processes: int, args: argparse.Namespace, logs: Path) -> list[Step]:
    with fresh_database() as url, ExitStack() as stack:
        key = api_key(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = ["serve", "--no-engine", "--workers", str(processes), "--port", str(port)]
        api = stack.enter_context(started(argv, url, logs / f"api{processes}.log"))
        wait_healthy(base, api)
        ids = setup_campaigns(base, key, 4, 1000)
        time.sleep(2)  # every uvicorn child up
        return asyncio.run(step_rates(base, key, ids, api, args))


async def step_rates(base: str, key: str, ids: list[str], api: psutil.Process, args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    serial = [0]
    connector = aiohttp.TCPConnector(limit=256, force_close=args.new_connections)
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(base, headers=headers, connector=connector, timeout=timeout) as session:
        await open_loop(session, ids, 20, 1.5, serial)  # connections and caches warm
        for rate in args.rates:
            meter = CpuMeter([api])
            with meter:
                lat, lags, errors = await open_loop(session, ids, rate, args.step_seconds, serial)
            step = Step(rate, len(lat), errors, pct(lat, 0.5), pct(lat, 0.99), pct(lags, 0.99), meter.cpu)
            steps.append(step)
            print(
                f"  {rate:6.0f}/s  n={step.sent:6d}  errors {errors:4d}  p50 {step.p50:7.1f} ms  p99 {step.p99:7.1f} ms"
                f"  generator lag p99 {step.lag99:6.1f} ms  | {step.cpu.line('API')}",
                flush=True,
            )
            if errors or step.p50 >= SATURATED_MS:  # queueing: the rate is past what the processes serve
                break
            await asyncio.sleep(1)  # the queue of the last step drains
    return steps


def best(steps: list[Step]) -> Step | None:
    good = [s for s in steps if s.p99 < P99_LIMIT_MS and not s.errors]
    return max(good, key=lambda s: s.rate) if good else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="engine,api")
    parser.add_argument("--campaigns", type=int, default=16)
    parser.add_argument("--leads", type=int, default=6000, help="per campaign")
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--window", type=float, default=15)
    parser.add_argument("--orgs", type=int, default=1, help="engine: the campaigns spread over this many organizations")
    parser.add_argument("--rounds", type=int, default=2, help="engine: 1 and 2 workers, this many times")
    parser.add_argument("--rates", default="10,20,30,40,50,60,80,100,120,150,200,250,300,400")
    parser.add_argument("--step-seconds", type=float, default=6)
    parser.add_argument("--database-url", default=None, help="an existing database to create the fresh ones beside")
    parser.add_argument(
        "--new-connections", action="store_true", help="API: a new connection per request (no keep-alive)"
    )
    parser.add_argument("--mix", default="40,30,20,10", help="API: % GET campaign, list leads, POST lead, PATCH")
    args = parser.parse_args()
    shares = [float(x) / 100 for x in args.mix.split(",")]
    MIX[:] = [sum(shares[: i + 1]) for i in range(3)]
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.database_url:
        global PG
        PG = args.database_url
    logs = Path(tempfile.mkdtemp(prefix="dwscale"))
    parts = args.parts.split(",")
    load = os.getloadavg()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} before the run; logs in {logs}"
    )
    if "engine" in parts:
        print(
            f"\n1. Engine: {args.campaigns} campaigns x {args.leads:,} leads in {args.orgs} organization(s), "
            "zero-latency simulated carrier"
        )
        for round_ in range(1, args.rounds + 1):  # 1 then 2 workers, again: the machine's load drifts
            rates = {}
            for n in (1, 2):
                rate, cpu, left = engine_run(n, args, logs)
                rates[n] = rate
                note = "" if left else "  (the leads ran out: raise --leads)"
                print(f"  round {round_}, {n} worker(s): {rate:7.0f} decisions/s over {args.window:.0f} s{note}")
                print(f"    {cpu.line('workers')}", flush=True)
            print(f"  round {round_}: 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x", flush=True)
    if "api" in parts:
        print(f"\n2. API: open loop, p99 limit {P99_LIMIT_MS:.0f} ms, {args.step_seconds:.0f} s per rate")
        found = {}
        for n in (1, 2):
            print(f"  serve --no-engine --workers {n}:")
            steps = api_run(n, args, logs)
            found[n] = best(steps)
            top = found[n]
            print(f"  -> {top.rate:.0f} requests/s at p99 {top.p99:.1f} ms" if top else "  -> no rate under the limit")
            over = [s.rate for s in steps if s.p50 >= SATURATED_MS]
            served = [s.rate for s in steps if s.p50 < SATURATED_MS]
            print(
                f"  -> saturated at {over[0]:.0f} requests/s (median >= {SATURATED_MS:.0f} ms)"
                if over
                else f"  -> not saturated up to {max(served):.0f} requests/s"
            )
        if found[1] and found[2]:
            print(f"  2 processes / 1 process: {found[2].rate / found[1].rate:.2f}x")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after the run")


if __name__ == "__main__":
    main()
