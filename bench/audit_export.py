"""The audit export: rows a second through `GET /v1/campaigns/{id}/audit`, on SQLite and PostgreSQL.

    python bench/audit_export.py [--rows 1000000] [--skipped-share 0.1] [--only sqlite|postgresql]
                                 [--pg-admin postgresql://postgres@127.0.0.1:5432/postgres]

For each database: starts `dialwave serve` (a subprocess, fresh database), makes a campaign, bulk-inserts
its history straight into the tables (leads, two attempts per answered-or-busy lead with a typical
decision, and skipped leads with a reason: `--rows` export rows in all), then streams the CSV through
HTTP and prints seconds, rows a second, MB a second and the server's peak memory (the export is read in
pages, so memory stays flat whatever the row count). The server's CPU seconds per export are printed too:
on a shared machine rows per CPU-second says more than rows per second (PostgreSQL's own backend work
is not in it)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from _server import dialwave_server, make_campaign

from dialwave.ids import new_ids

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


def history(
    org: str, campaign_id: str, rows: int, skipped_share: float
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The campaign's leads and calls in chunks: (lead rows, call rows) as plain tuples in column order."""
    skipped = int(rows * skipped_share)
    dialed = (rows - skipped) // 2  # two attempts per dialed lead
    areas = ("212", "305", "415", "646")
    for start in range(0, dialed + skipped, CHUNK):
        count = min(CHUNK, dialed + skipped - start)
        lead_rows, call_rows = [], []
        for i, lead_id in enumerate(new_ids("lead", count)):
            n = start + i
            number = f"+1{areas[n % 4]}{200 + n // 40000:03d}{(n // 4) % 10000:04d}"
            at = T0 + timedelta(seconds=n // 20)
            is_skipped = n >= dialed
            status, attempts = ("skipped", 0) if is_skipped else ("completed", 2)
            reason = "on a do-not-call list" if is_skipped else None
            variables = json.dumps({"name": f"Name{n}"})
            lead_rows.append((lead_id, org, campaign_id, number, variables, status, attempts, reason, at, T0, at))
            if is_skipped:
                continue
            for attempt, call_id in enumerate(new_ids("call", 2), start=1):
                began = at + timedelta(hours=4 * (attempt - 1))
                answered = attempt == 2
                call_rows.append(
                    (
                        call_id,
                        org,
                        campaign_id,
                        lead_id,
                        attempt,
                        "+14155550100",
                        number,
                        "ended",
                        "answered" if answered else "busy",
                        began,
                        began + timedelta(seconds=8) if answered else None,
                        began + timedelta(seconds=9) if answered else None,
                        began + timedelta(seconds=70 if answered else 5),
                        62.0 if answered else 0.0,
                        False,
                        "completed" if answered else "retry in 4 h (busy)",
                        json.dumps(decision(began, number)),
                        began,
                    )
                )
        yield lead_rows, call_rows


LEAD_COLUMNS = [
    "id",
    "organization_id",
    "campaign_id",
    "phone_number",
    "variables",
    "status",
    "attempts",
    "reason",
    "finished_at",
    "created_at",
    "updated_at",
]
CALL_COLUMNS = [
    "id",
    "organization_id",
    "campaign_id",
    "lead_id",
    "attempt",
    "from_number",
    "to_number",
    "status",
    "outcome",
    "started_at",
    "answered_at",
    "agent_connected_at",
    "ended_at",
    "duration_seconds",
    "abandoned",
    "reason",
    "decision",
    "created_at",
]


def _sqlite_value(value: Any) -> Any:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def fill_sqlite(path: str, campaign_id: str, rows: int, skipped_share: float) -> tuple[int, int]:
    """Bulk inserts (executemany, one transaction a chunk) straight through sqlite3."""
    conn = sqlite3.connect(path)
    org = conn.execute("SELECT organization_id FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()[0]
    made = [0, 0]
    lead_sql = f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) VALUES ({', '.join('?' * len(LEAD_COLUMNS))})"
    call_sql = f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
    for lead_rows, call_rows in history(org, campaign_id, rows, skipped_share):
        with conn:
            conn.executemany(lead_sql, ([_sqlite_value(v) for v in r] for r in lead_rows))
            conn.executemany(call_sql, ([_sqlite_value(v) for v in r] for r in call_rows))
        made[0] += len(call_rows)
        made[1] += sum(1 for r in lead_rows if r[5] == "skipped")
    conn.execute("ANALYZE")
    conn.close()
    return made[0], made[1]


async def fill_postgresql(url: str, campaign_id: str, rows: int, skipped_share: float) -> tuple[int, int]:
    """Bulk inserts through COPY (asyncpg's copy_records_to_table)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    org = await conn.fetchval("SELECT organization_id FROM campaigns WHERE id = $1", campaign_id)
    made = [0, 0]
    for lead_rows, call_rows in history(org, campaign_id, rows, skipped_share):
        async with conn.transaction():
            await conn.copy_records_to_table("leads", records=lead_rows, columns=LEAD_COLUMNS)
            await conn.copy_records_to_table("calls", records=call_rows, columns=CALL_COLUMNS)
        made[0] += len(call_rows)
        made[1] += sum(1 for r in lead_rows if r[5] == "skipped")
    await conn.execute("ANALYZE calls")
    await conn.execute("ANALYZE leads")
    await conn.close()
    return made[0], made[1]


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
        started = time.perf_counter()
        if url is None:
            path = _sqlite_url(server).split("///", 1)[1]
            attempts, skipped = fill_sqlite(path, campaign_id, rows, skipped_share)
        else:
            attempts, skipped = asyncio.run(fill_postgresql(url, campaign_id, rows, skipped_share))
        filled = time.perf_counter() - started
        how = "COPY" if url else "executemany"
        print(f"{label:<11} filled {attempts:,} attempts + {skipped:,} skipped leads in {filled:.0f} s ({how})")
        base_rss = server.peak_rss
        for run_no in (1, 2):
            cpu = server.process.cpu_times()
            count, size, took = export(server.base, server.headers, campaign_id)
            after = server.process.cpu_times()
            used = (after.user + after.system) - (cpu.user + cpu.system)
            assert count == attempts + skipped, (count, attempts, skipped)
            print(
                f"{label:<11} export #{run_no}: {count:,} rows, {size / 1e6:.0f} MB in {took:.1f} s:"
                f" {count / took:,.0f} rows/s, {size / 1e6 / took:.1f} MB/s; server CPU {used:.1f} s ="
                f" {count / used:,.0f} rows per CPU-second; load average {os.getloadavg()[0]:.1f}"
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
