"""GET/PATCH latency of one campaign under concurrent clients, with a large campaign (default 1,000,000 leads).

    python bench/api_latency.py [--leads 1000000] [--clients 50] [--seconds 20] [--rate R] [--database-url ...]

The leads are imported through the API first (CSV). Each client alternates: GET the campaign, PATCH its
description, and records the latency of every request.

- Closed loop (default): each client sends its next request as soon as the last one is answered. This
  measures saturation: by Little's law the latency is clients / throughput, so 50 clients see
  p50 = 50 / (requests per second) whatever the code does below the saturation throughput.
- Open loop (`--rate R`): the clients together send R requests per second on a fixed schedule; a
  request's latency counts from its scheduled time (a late send counts as waiting), so queueing shows."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import dialwave_server, make_campaign, write_csv


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def clients(
    base: str, headers: dict[str, str], cid: str, n: int, seconds: float, rate: float | None
) -> dict[str, list[float]]:
    lat: dict[str, list[float]] = {"GET": [], "PATCH": []}
    errors = 0
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        deadline = start + seconds
        every = n / rate if rate else 0.0  # one client's interval between requests

        async def one(worker: int) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < deadline:
                method = "PATCH" if (i + worker) % 2 else "GET"
                started = time.perf_counter()
                if rate:
                    scheduled = start + (i + worker / n) * every
                    if scheduled >= deadline:
                        break
                    if scheduled > started:
                        await asyncio.sleep(scheduled - started)
                    started = scheduled
                if method == "GET":
                    response = await client.get(f"/v1/campaigns/{cid}")
                else:
                    response = await client.patch(f"/v1/campaigns/{cid}", json={"description": f"w{worker} i{i}"})
                lat[method].append(time.perf_counter() - started)
                errors += response.status_code >= 400
                i += 1

        await asyncio.gather(*(one(w) for w in range(n)))
    if errors:
        print(f"errors: {errors}")
    return lat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests per second in all")
    args = parser.parse_args()
    with dialwave_server(args.database_url) as server:
        cid = make_campaign(server, "Latency bench")
        path = os.path.join(tempfile.mkdtemp(), "leads.csv")
        write_csv(path, args.leads)
        with open(path, "rb") as body:
            httpx.post(
                f"{server.base}/v1/campaigns/{cid}/leads/import",
                content=body,
                timeout=3600,
                headers={**server.headers, "Content-Type": "text/csv"},
            ).raise_for_status()
        os.remove(path)
        lat = asyncio.run(clients(server.base, server.headers, cid, args.clients, args.seconds, args.rate))
    backend = "postgresql" if args.database_url else "sqlite"
    print(
        f"backend: {backend}; {args.leads:,} leads; {args.clients} concurrent clients; {args.seconds:.0f}s; "
        f"{f'open loop at {args.rate:g} requests/s' if args.rate else 'closed loop'}; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores (clients and server share them)"
    )
    for method, values in lat.items():
        print(
            f"{method:5s} n={len(values):6d}  p50 {pct(values, 0.5):6.1f} ms  p99 {pct(values, 0.99):6.1f} ms  "
            f"mean {statistics.mean(values) * 1000:6.1f} ms  throughput {len(values) / args.seconds:6.0f}/s"
        )


if __name__ == "__main__":
    main()
