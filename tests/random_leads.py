"""Random lead rows written straight into a SQLite test database (two campaigns of one organization):
what the claim-order and open-leads tests read back two ways and compare."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialwave.store.repositories.sql import sqlite_time


async def two_campaigns(conn: AsyncConnection) -> None:
    """No lead; the organization `org` with its campaigns `cmp_a` and `cmp_b`."""
    await conn.exec_driver_sql("DELETE FROM leads")
    await conn.exec_driver_sql("INSERT OR IGNORE INTO organizations (id, name, created_at) VALUES ('org', 'o', 'x')")
    await conn.exec_driver_sql(
        "INSERT OR IGNORE INTO campaigns (id, organization_id, name, status, config, version, created_at, "
        "updated_at) VALUES ('cmp_a', 'org', 'a', 'active', '{}', 1, 'x', 'x'), "
        "('cmp_b', 'org', 'b', 'active', '{}', 1, 'x', 'x')"
    )


def random_leads(
    rng: random.Random,
    count: int,
    *,
    statuses: Sequence[str],
    times: Sequence[datetime],
    untimed: float,
    variables: Sequence[str],
    overrides: Sequence[str | None],
    retries: Sequence[str | None],
    attempts: bool = False,
) -> list[dict[str, Any]]:
    """`count` leads, two thirds in `cmp_a`; each column drawn from its choices (JSON as text), the due
    time left out for a share `untimed` of them; `attempts`: 0-3 attempts drawn too."""
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "id": f"lead_{rng.getrandbits(48):012x}",
            "organization_id": "org",
            "campaign_id": rng.choice(["cmp_a", "cmp_a", "cmp_b"]),
            "phone_number": f"+1212{i:07d}",
            "variables": rng.choice(variables),
            "timezone": rng.choice([None, "America/Chicago"]),
            "region": rng.choice([None, "US-TX"]),
            "agent_overrides": rng.choice(overrides),
            "retries": rng.choice(retries),
            "status": rng.choice(statuses),
        }
        if attempts:
            row["attempts"] = rng.randint(0, 3)
        row["next_attempt_at"] = None if rng.random() < untimed else sqlite_time(rng.choice(times))
        row["created_at"] = row["updated_at"] = "x"
        rows.append(row)
    return rows


async def insert_leads(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """The rows as given (all with the same columns), in one statement."""
    if not rows:
        return
    columns = list(rows[0])
    await conn.exec_driver_sql(
        f"INSERT INTO leads ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [tuple(row[c] for c in columns) for row in rows],
    )


_DATABASES: dict[str, str] = {}


def sqlite_database(name: str, make_schema: Callable[[str], None]) -> str:
    """The URL of a SQLite file made once per test session and `name`, its tables by `make_schema` (a
    hypothesis test's examples share it: each empties the leads first)."""
    if name not in _DATABASES:
        path = Path(tempfile.mkdtemp(prefix=f"dialwave-{name}-")) / "leads.db"
        url = f"sqlite:///{path}"
        make_schema(url)
        _DATABASES[name] = url
    return _DATABASES[name]
