"""Bulk do-not-call list import: numbers a second through `POST /v1/dnc/import`.

    python bench/dnc_import.py [--numbers 1000000] [--database-url postgresql://...]

Writes a registry-style file (one 10-digit US number a line, as the national registry ships them),
starts `dialwave serve` (a subprocess, fresh database), imports it as a named list twice (a first
import, then a refresh that replaces it) and prints the seconds and numbers per second of each, with the
server's peak memory. Target (issue 17): at least 200,000 numbers a second."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import dialwave_server


def write_file(path: str, count: int) -> int:
    areas = ("212", "415", "646", "312", "617", "206", "303", "512", "305", "702")
    with open(path, "w") as out:
        for i in range(count):
            rest = i // len(areas)
            out.write(f"{areas[i % len(areas)]}{200 + rest // 10000:03d}{rest % 10000:04d}\n")
    return os.path.getsize(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    path = os.path.join(tempfile.mkdtemp(prefix="dwdnc"), "registry.txt")
    size = write_file(path, args.numbers)
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"# {args.numbers:,} numbers, {size / 1e6:.1f} MB, database {args.database_url or 'SQLite file'}")
    with dialwave_server(args.database_url) as server:
        server.watch_memory()
        params = {"list": "registry", "default_region": "US", "max_age_days": 31}
        headers = {**server.headers, "Content-Type": "text/csv"}
        for label in ("first import", "refresh (replaces it)"):
            with open(path, "rb") as f, httpx.Client(timeout=3600) as client:
                start = time.perf_counter()
                answer = client.post(f"{server.base}/v1/dnc/import", params=params, content=f, headers=headers)
                took = time.perf_counter() - start
            answer.raise_for_status()
            body = answer.json()
            print(
                f"{label:<22} {took:7.2f} s  {body['imported'] / took:>10,.0f} numbers/s"
                f"  (imported {body['imported']:,}, rejected {body['rejected']})"
            )
        print(f"server peak RSS {server.peak_rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
