"""Named do-not-call lists imported in bulk (a national registry, a vendor's list) and refreshed by
importing them again: campaigns name them in `dnc.lists`; a list older than its `max_age_days` makes the
campaigns naming it warn."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import IO

from sqlalchemy.engine import RowMapping

from dialwave.domain.dnc_file import country_code, read_numbers
from dialwave.errors import NotFound, ValidationFailed
from dialwave.ids import new_id
from dialwave.store.db import Database
from dialwave.store.repositories import dnc_lists as repo

BATCH = 100_000  # numbers per transaction while a list fills
EMPTY_BATCH = 50_000  # numbers deleted per transaction from a replaced list
LEFTOVER_AGE = timedelta(hours=6)  # an unnamed list this old was left by a server that stopped: emptied too


@dataclass
class ListImport:
    imported: int = 0  # distinct numbers on the list now
    lines: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # lists to empty (`empty`) once the answer is sent


def _read(text: io.TextIOWrapper, cc: int | None, first_row: int, report: ListImport, max_errors: int) -> list[str]:
    """The next batch of the file's numbers (in a worker thread, while the batch before is written)."""
    lines = list(islice(text, BATCH))
    report.lines += len(lines)
    numbers, rejected = read_numbers(lines, cc, first_row, report.errors, max_errors)
    report.rejected += rejected
    return numbers


async def import_list(
    db: Database,
    org_id: str,
    name: str,
    binary: IO[bytes],
    region: str | None,
    source: str | None,
    max_age_days: int | None,
    now: datetime,
    max_errors: int,
) -> tuple[RowMapping, ListImport]:
    """Fill a new list from the file, then give it `name`. The list of that name before loses it at once
    and is to be emptied (`empty`, each of `report.replaced`) after the answer, with any list an
    earlier import or emptying left unfinished."""
    try:
        cc = country_code(region) if region else None
    except ValueError as exc:
        raise ValidationFailed(f"default_region: {exc}", fields={"default_region": str(exc)}) from exc
    report = ListImport()
    list_id = new_id("dncl")
    async with db.write() as conn:
        await repo.new_list(conn, {"id": list_id, "organization_id": org_id, "created_at": now})
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
    try:
        row = 1
        batch = await asyncio.to_thread(_read, text, cc, row, report, max_errors)
        while report.lines >= row:
            row = report.lines + 1
            reading = asyncio.ensure_future(asyncio.to_thread(_read, text, cc, row, report, max_errors))
            async with db.write() as conn:  # the next batch is read while this one is written
                await repo.fill(conn, list_id, batch)
            batch = await reading
    except BaseException:
        await empty(db, list_id)
        raise
    async with db.write() as conn:
        report.imported = await repo.count_numbers(conn, list_id)
        old = await repo.named(conn, org_id, name, lock=True)
        if old is not None:
            await repo.drop_name(conn, old["id"])
        values = {"source": source, "max_age_days": max_age_days, "refreshed_at": now, "numbers_count": report.imported}
        await repo.take_name(conn, list_id, name, values)
        current = await repo.named(conn, org_id, name)
        leftovers = await repo.unnamed_before(conn, org_id, now - LEFTOVER_AGE)
    assert current is not None
    report.replaced = [old["id"]] if old is not None else []
    report.replaced += [i for i in leftovers if i != list_id]
    return current, report


async def empty(db: Database, list_id: str) -> None:
    """Delete an unnamed list's numbers, a batch per transaction, and then the list."""
    while True:
        async with db.write() as conn:
            if not await repo.empty_some(conn, list_id, EMPTY_BATCH):
                return


async def lists(db: Database, org_id: str) -> Sequence[RowMapping]:
    async with db.read() as conn:
        return await repo.all_lists(conn, org_id)


async def get_list(db: Database, org_id: str, name: str) -> RowMapping:
    async with db.read() as conn:
        row = await repo.named(conn, org_id, name)
    if row is None:
        raise NotFound(f"no do-not-call list named '{name}'")
    return row


async def delete_list(db: Database, org_id: str, name: str) -> None:
    async with db.write() as conn:
        row = await repo.named(conn, org_id, name, lock=True)
        if row is None:
            raise NotFound(f"no do-not-call list named '{name}'")
        await repo.drop_name(conn, row["id"])
    await empty(db, row["id"])
