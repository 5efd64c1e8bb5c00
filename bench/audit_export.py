"""The audit export: rows a second through `GET /v1/campaigns/{id}/audit`, on SQLite and PostgreSQL.

    python bench/audit_export.py [--rows 1000000] [--skipped-share 0.1] [--only sqlite|postgresql]
                                 [--pg-admin postgresql://postgres@127.0.0.1:5432/postgres]

For each database: starts `dialwave serve` (a subprocess, fresh database), makes a campaign, bulk-inserts
its history straight into the tables (leads, two attempts per answered-or-busy lead with a typical
decision, and skipped leads with a reason: `--rows` export rows in all), then streams the CSV through
HTTP and prints seconds, rows a second, MB a second and the server's peak memory (the export is read in
pages, so memory stays flat whatever the row count)."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from _server import dialwave_server, make_campaign

from dialwave.ids import new_ids
from dialwave.store.db import Database
from dialwave.store.tables import calls, campaigns, leads

T0 = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
CHUNK = 10_000


def decision(at: datetime, number: str) -> dict[str, Any]:
    local = (at - timedelta(hours=5)).replace(tzinfo=None).isoformat(timespec="seconds") + "-05:00"
    return {
        "checked_at": at.isoformat(timespec="seconds"),
        "zones": [{"zone": "America/New_York", "local_time": local}],
        "rules": ["US-FL" if number.startswith("+1305") else "US"],
        "campaign_zone": "America/New_York",
        "recipient_local_time": True,
        "dnc_lists": ["organization", "registry-us"],
        "consent": {"required": "ai_voice", "id": "cns_01jd3m0f8x9v7k2q4r6t8w0y2a"},
    }


async def fill(url: str, campaign_id: str, rows: int, skipped_share: float) -> tuple[int, int]:
    """Insert the campaign's history; returns (attempt rows, skipped rows)."""
    db = Database(url)
    async with db.read() as conn:
        org = (await conn.execute(sa.select(campaigns.c.organization_id).where(campaigns.c.id == campaign_id))).scalar()
    skipped = int(rows * skipped_share)
    attempts = rows - skipped
    dialed = attempts // 2  # two attempts per dialed lead
    attempts = dialed * 2
    areas = ("212", "305", "415", "646")
    made = 0
    for start in range(0, dialed + skipped, CHUNK):
        count = min(CHUNK, dialed + skipped - start)
        lead_ids = new_ids("lead", count)
        lead_rows, call_rows = [], []
        for i, lead_id in enumerate(lead_ids):
            n = start + i
            number = f"+1{areas[n % 4]}{200 + n // 40000:03d}{(n // 4) % 10000:04d}"
            at = T0 + timedelta(seconds=n // 20)
            is_skipped = n >= dialed
            lead_rows.append(
                {
                    "id": lead_id,
                    "organization_id": org,
                    "campaign_id": campaign_id,
                    "phone_number": number,
                    "variables": {"name": f"Name{n}"},
                    "status": "skipped" if is_skipped else "completed",
                    "attempts": 0 if is_skipped else 2,
                    "reason": "on a do-not-call list" if is_skipped else None,
                    "finished_at": at,
                    "created_at": T0,
                    "updated_at": at,
                }
            )
            if is_skipped:
                continue
            for attempt, call_id in enumerate(new_ids("call", 2), start=1):
                began = at + timedelta(hours=4 * (attempt - 1))
                answered = attempt == 2
                call_rows.append(
                    {
                        "id": call_id,
                        "organization_id": org,
                        "campaign_id": campaign_id,
                        "lead_id": lead_id,
                        "attempt": attempt,
                        "from_number": "+14155550100",
                        "to_number": number,
                        "status": "ended",
                        "outcome": "answered" if answered else "busy",
                        "started_at": began,
                        "answered_at": began + timedelta(seconds=8) if answered else None,
                        "agent_connected_at": began + timedelta(seconds=9) if answered else None,
                        "ended_at": began + timedelta(seconds=70 if answered else 5),
                        "duration_seconds": 62.0 if answered else 0.0,
                        "abandoned": False,
                        "reason": "completed" if answered else "retry in 4 h (busy)",
                        "decision": decision(began, number),
                        "created_at": began,
                    }
                )
        async with db.write() as conn:
            await conn.execute(leads.insert(), lead_rows)
            if call_rows:
                await conn.execute(calls.insert(), call_rows)
        made += len(lead_rows)
    if url.startswith("postgresql"):
        async with db.write() as conn:
            await conn.execute(sa.text("ANALYZE calls"))
            await conn.execute(sa.text("ANALYZE leads"))
    await db.dispose()
    return attempts, skipped


def export(base: str, headers: dict[str, str], campaign_id: str) -> tuple[int, int, float]:
    """Stream the CSV; returns (data rows, bytes, seconds)."""
    lines = size = 0
    start = time.perf_counter()
    with (
        httpx.Client(timeout=3600) as client,
        client.stream("GET", f"{base}/v1/campaigns/{campaign_id}/audit", headers=headers) as answer,
    ):
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return lines - 1, size, time.perf_counter() - start


async def _admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run(label: str, url: str | None, rows: int, skipped_share: float) -> None:
    with dialwave_server(url) as server:
        server.watch_memory()
        campaign_id = make_campaign(server, f"audit-{label}")
        db_url = url or _sqlite_url(server)
        started = time.perf_counter()
        attempts, skipped = asyncio.run(fill(db_url, campaign_id, rows, skipped_share))
        filled = time.perf_counter() - started
        print(f"{label:<11} filled {attempts:,} attempts + {skipped:,} skipped leads in {filled:.0f} s (bulk inserts)")
        base_rss = server.peak_rss
        for run_no in (1, 2):
            count, size, took = export(server.base, server.headers, campaign_id)
            assert count == attempts + skipped, (count, attempts, skipped)
            print(
                f"{label:<11} export #{run_no}: {count:,} rows, {size / 1e6:.0f} MB in {took:.1f} s:"
                f" {count / took:,.0f} rows/s, {size / 1e6 / took:.1f} MB/s"
            )
        print(
            f"{label:<11} server peak RSS {server.peak_rss / 1e6:.0f} MB (before the exports {base_rss / 1e6:.0f} MB)"
        )


def _sqlite_url(server: Any) -> str:
    # dialwave_server made the file; the server process was given it through DIALWAVE_DATABASE_URL
    env = server.process.environ()
    return str(env["DIALWAVE_DATABASE_URL"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skipped-share", type=float, default=0.1)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"# {args.rows:,} export rows ({args.skipped_share:.0%} skipped leads)")
    if args.only in (None, "sqlite"):
        run("SQLite", None, args.rows, args.skipped_share)
    if args.only in (None, "postgresql"):
        name = f"dwbench_audit_{int(time.time())}"
        asyncio.run(_admin(args.pg_admin, f'CREATE DATABASE "{name}"'))
        try:
            url = args.pg_admin.rsplit("/", 1)[0] + f"/{name}"
            run("PostgreSQL", url, args.rows, args.skipped_share)
        finally:
            asyncio.run(_admin(args.pg_admin, f'DROP DATABASE "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
