"""CSV import through the API: rows/s and the server's peak RSS.

python bench/import_csv.py [--rows 1000000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.dirname(__file__))
from _server import dialwave_server, make_campaign, write_csv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "leads.csv")
    started = time.perf_counter()
    size = write_csv(path, args.rows)
    print(f"generated {args.rows:,} rows ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
    with dialwave_server(args.database_url) as server:
        campaign_id = make_campaign(server, "Import bench")
        server.watch_memory()
        rss_before = server.process.memory_info().rss
        with open(path, "rb") as body, httpx.Client(timeout=3600) as client:
            started = time.perf_counter()
            response = client.post(
                f"{server.base}/v1/campaigns/{campaign_id}/leads/import",
                content=body,
                headers={**server.headers, "Content-Type": "text/csv"},
            )
            elapsed = time.perf_counter() - started
        response.raise_for_status()
        report = response.json()
        time.sleep(0.2)
        backend = "postgresql" if args.database_url else "sqlite"
        print(f"backend: {backend}; machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        print(f"accepted {report['accepted']:,}, rejected {report['rejected']}, duplicates {report['duplicates']}")
        print(f"import: {elapsed:.1f}s, {report['rows'] / elapsed:,.0f} rows/s")
        print(f"server RSS: {rss_before / 2**20:.0f} MB before, peak {server.peak_rss / 2**20:.0f} MB")
    os.remove(path)


if __name__ == "__main__":
    main()
