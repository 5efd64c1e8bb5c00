"""Reading a CSV file of leads: the delimiter, the header's phone, time-zone and region columns, then
batches of rows checked by the domain's row rules, parsed in slices that let the event loop run."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import IO

from dialwave.domain.lead_rows import Candidate, ImportContext, ImportReport, check_row
from dialwave.errors import PayloadTooLarge, ValidationFailed

PHONE_COLUMNS = ("phone_number", "phone", "number", "phonenumber", "phone number", "mobile", "msisdn", "to")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
REGION_COLUMNS = ("region", "subdivision")
MAX_COLUMNS = 200  # a lead has at most this many variables (as a JSON lead does)
PARSE_SLICE = 250  # rows parsed between two turns of the event loop (about 2.5 ms)...
SLICE_CELLS = 1_000  # ...fewer when rows are wide: 250 rows of 200 columns held the loop 50-80 ms


def rows_per_slice(columns: int) -> int:
    return max(10, min(PARSE_SLICE, SLICE_CELLS // max(1, columns)))


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
        try:
            header = next(csv.reader([first], delimiter=delimiter))
        except csv.Error as exc:
            raise ValidationFailed(f"file: the header row cannot be read ({exc})", fields={"file": str(exc)}) from exc
        if len(header) > MAX_COLUMNS:
            message = f"has {len(header)} columns; at most {MAX_COLUMNS}"
            raise ValidationFailed(f"file: the header row {message}", fields={"file": message})
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
        self.region_idx = next((lowered.index(c) for c in REGION_COLUMNS if c in lowered), None)
        fixed = (phone_idx, self.tz_idx, self.region_idx)
        self.var_cols = [(i, n) for i, n in enumerate(names) if i not in fixed and n]
        self.reader = csv.reader(text, delimiter=delimiter)
        self.text = text
        self.ctx, self.report, self.max_rows = ctx, report, max_rows
        self.row = 0
        self.columns = len(header)
        self.slice_rows = rows_per_slice(self.columns)

    def _read(self, size: int) -> list[tuple[int, str | None, dict[str, str], str | None, str | None]]:
        records = []
        phone_idx, tz_idx, region_idx, var_cols = self.phone_idx, self.tz_idx, self.region_idx, self.var_cols
        reader = self.reader
        line = reader.line_num
        try:
            for record in reader:
                lines, line = reader.line_num - line, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                self.row += 1
                if self.row > self.max_rows:
                    raise PayloadTooLarge(f"the file has more than {self.max_rows} rows; split it")
                if lines > 1:  # a quote that is not closed swallowed the lines after it: never merge rows
                    self.unclosed_quote(lines)
                    continue
                width = len(record)
                variables = {name: record[i] for i, name in var_cols if i < width and record[i] != ""}
                tz = record[tz_idx].strip() if tz_idx is not None and tz_idx < width else None
                region = record[region_idx].strip() if region_idx is not None and region_idx < width else None
                records.append((self.row, record[phone_idx] if phone_idx < width else None, variables, tz, region))
                if len(records) >= size:
                    break
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"file: row {self.row + 1} is not UTF-8 text", fields={"file": "not UTF-8"}) from exc
        except csv.Error as exc:
            raise ValidationFailed(f"file: row {self.row + 1}: {exc}", fields={"file": str(exc)}) from exc
        return records

    def unclosed_quote(self, lines: int) -> None:
        self.report.rows += 1
        self.report.rejected += 1
        self.report.error(
            self.row, f"a quote is not closed: {lines} lines of the file were read as this one row; close it"
        )

    def next_batch(self, size: int) -> list[Candidate] | None:
        """Up to `size` valid rows; None at the end of the file."""
        records = self._read(size)
        if not records:
            return None
        out: list[Candidate] = []
        ctx, report = self.ctx, self.report
        for row, phone, variables, tz, region in records:
            cand = check_row(ctx, report, row, phone, variables, tz, None, region)
            if cand:
                out.append(cand)
        return out


async def parse_batch(rows: CsvRows, size: int) -> list[Candidate] | None:
    """The next `size` valid rows (None at the end of the file), parsed in slices."""
    out: list[Candidate] = []
    while len(out) < size:
        part = rows.next_batch(min(rows.slice_rows, size - len(out)))
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
