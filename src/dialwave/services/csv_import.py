"""CSV import: a file read as a stream in batches of validated rows, each batch written by the
LeadWriter in its own transaction, the next batch parsed while the database inserts this one."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from dialwave.errors import PayloadTooLarge, ValidationFailed
from dialwave.services.leads import (
    Candidate,
    ImportContext,
    ImportReport,
    LeadWriter,
    after_bulk_load,
    check_row,
    prepare,
)
from dialwave.store.db import Database

PHONE_COLUMNS = ("phone_number", "phone", "number", "phonenumber", "phone number", "mobile", "msisdn", "to")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")


def sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvRows:
    """Reads a CSV file object in batches of parsed, validated rows (its header is read in a worker
    thread; the batches on the event loop's thread, in slices: see import_csv)."""

    def __init__(self, binary: IO[bytes], ctx: ImportContext, report: ImportReport, max_rows: int) -> None:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")
        try:
            first = text.readline()
        except UnicodeDecodeError as exc:
            raise ValidationFailed("file: is not UTF-8 text", fields={"file": "not UTF-8"}) from exc
        if not first.strip():
            raise ValidationFailed("file: is empty (a header row is needed)", fields={"file": "empty"})
        delimiter = sniff_delimiter(first)
        header = next(csv.reader([first], delimiter=delimiter))
        names = [h.strip() for h in header]
        lowered = [n.lower() for n in names]
        phone_idx = next((lowered.index(c) for c in PHONE_COLUMNS if c in lowered), None)
        if phone_idx is None:
            raise ValidationFailed(
                "file: no phone column: name one of phone_number, phone, number",
                fields={"file": "no phone column (phone_number, phone or number)"},
            )
        self.phone_idx = phone_idx
        self.tz_idx = next((lowered.index(c) for c in TIMEZONE_COLUMNS if c in lowered), None)
        self.var_cols = [(i, n) for i, n in enumerate(names) if i not in (phone_idx, self.tz_idx) and n]
        self.reader: Iterator[list[str]] = csv.reader(text, delimiter=delimiter)
        self.text = text
        self.ctx, self.report, self.max_rows = ctx, report, max_rows
        self.row = 0

    def _read(self, size: int) -> list[tuple[int, str | None, dict[str, str], str | None]]:
        records = []
        phone_idx, tz_idx, var_cols = self.phone_idx, self.tz_idx, self.var_cols
        try:
            for record in self.reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                self.row += 1
                if self.row > self.max_rows:
                    raise PayloadTooLarge(f"the file has more than {self.max_rows} rows; split it")
                width = len(record)
                variables = {name: record[i] for i, name in var_cols if i < width and record[i] != ""}
                tz = record[tz_idx].strip() if tz_idx is not None and tz_idx < width else None
                records.append((self.row, record[phone_idx] if phone_idx < width else None, variables, tz))
                if len(records) >= size:
                    break
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"file: row {self.row + 1} is not UTF-8 text", fields={"file": "not UTF-8"}) from exc
        except csv.Error as exc:
            raise ValidationFailed(f"file: row {self.row + 1}: {exc}", fields={"file": str(exc)}) from exc
        return records

    def next_batch(self, size: int) -> list[Candidate] | None:
        """Up to `size` valid rows; None at the end of the file."""
        records = self._read(size)
        if not records:
            return None
        out: list[Candidate] = []
        ctx, report = self.ctx, self.report
        for row, phone, variables, tz in records:
            cand = check_row(ctx, report, row, phone, variables, tz, None)
            if cand:
                out.append(cand)
        return out


async def import_csv(
    db: Database,
    org_id: str,
    campaign_id: str,
    binary: IO[bytes],
    default_region: str | None,
    now: datetime,
    *,
    batch_rows: int,
    max_rows: int,
    max_errors: int,
) -> ImportReport:
    ctx, report = await prepare(db, org_id, campaign_id, default_region, max_errors)
    rows = await asyncio.to_thread(CsvRows, binary, ctx, report, max_rows)
    writer = LeadWriter(db, ctx, report, now)
    # Pipeline: the next batch is parsed while the database inserts this one (the insert is one SQLite
    # statement, run in C without the GIL), so both cores work. Parsing runs on the event loop's own
    # thread, in slices that let the loop run between them: parsing in a worker thread instead made the
    # loop's every database round trip wait for the GIL (60 ms a trip against a busy thread, measured),
    # which serialised parsing and writing.
    first = await parse_batch(rows, batch_rows)
    prepared = writer.prepare(first) if first is not None else None
    while prepared is not None:
        inserting = asyncio.Event()
        writing = asyncio.ensure_future(writer.write_prepared(prepared, inserting=inserting))
        started = asyncio.ensure_future(inserting.wait())
        try:
            await asyncio.wait({writing, started}, return_when=asyncio.FIRST_COMPLETED)
            if writing.done():
                await writing  # an empty batch, or a failed one: its error ends the import
            try:
                batch = await parse_batch(rows, batch_rows)
                prepared = writer.prepare(batch) if batch is not None else None
            except Exception:
                with contextlib.suppress(Exception):
                    await writing  # the rows before a bad row (or the size limit) stay stored
                raise
            await writing
        finally:
            started.cancel()
            if not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing
    # A CSV import spans many transactions: its completion is recorded in one more, after the last batch.
    await writer.write([], last="csv")
    await after_bulk_load(db, report.accepted)
    return report


PARSE_SLICE = 250  # rows parsed between two turns of the event loop (about 2.5 ms)


async def parse_batch(rows: CsvRows, size: int) -> list[Candidate] | None:
    """The next `size` valid rows (None at the end of the file), parsed in slices."""
    out: list[Candidate] = []
    while len(out) < size:
        part = rows.next_batch(min(PARSE_SLICE, size - len(out)))
        if part is None:
            return out or None
        out += part
        await asyncio.sleep(0)
    return out


def count_lines(binary: IO[bytes]) -> int:
    """Newlines in the file (an upper bound on its rows), then rewind."""
    total = 0
    for chunk in iter(lambda: binary.read(1 << 20), b""):
        total += chunk.count(b"\n")
    binary.seek(0)
    return total
