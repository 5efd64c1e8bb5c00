"""`dialwave dnc add|remove|import|list`: the organization's do-not-call list (/v1/dnc)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dialwave.cli_http.client import DEFAULT_URL, Api, ApiError
from dialwave.cli_http.common import ApiKey, AsJson, Limit, Url, connect, err_console, field, print_json, print_listing
from dialwave.cli_http.leads import errors_path, write_errors

dnc_app = typer.Typer(help="The organization's do-not-call list (/v1/dnc)", no_args_is_help=True)

BATCH = 10_000  # numbers per POST /v1/dnc (the API's limit)
PHONE_COLUMNS = ("phone_number", "phone", "number", "mobile", "msisdn", "to")
INDEX = re.compile(r"^numbers\[(\d+)\]$")
Reason = Annotated[str | None, typer.Option("--reason", help="why (stored with each number)")]
COLUMNS = [field("phone_number"), field("reason"), field("source"), field("created_at")]


@dnc_app.command("add")
def add(
    numbers: Annotated[list[str], typer.Argument(help="E.164 numbers (+14155550123)")],
    reason: Reason = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Put numbers on the list: no campaign of the organization dials them."""
    with connect(url, api_key) as api:
        answer = api.post("/v1/dnc", {"numbers": numbers, "reason": reason})
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"added {answer['added']}, already listed {answer['already_listed']}")


@dnc_app.command("remove")
def remove(
    number: Annotated[str, typer.Argument(help="the number to take off the list")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Take a number off the list."""
    with connect(url, api_key) as api:
        api.delete("/v1/dnc", phone_number=number)
    if as_json:
        print_json({"removed": number})
    else:
        typer.echo(f"removed {number}")


@dnc_app.command("list")
def list_(
    phone_number: Annotated[str | None, typer.Option("--phone-number", help="is this one number listed?")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
    limit: Limit = 50,
) -> None:
    """The numbers on the list."""
    with connect(url, api_key) as api:
        page = api.listing("/v1/dnc", limit, phone_number=phone_number)
    print_listing(page, COLUMNS, as_json)


def numbers_in(file: Path) -> Iterator[tuple[int, str]]:
    """(line, number) for each number of `file`: a CSV with a phone column (phone_number, phone, number,
    ...), or one number a line (the first cell of each line)."""
    with file.open(newline="", encoding="utf-8-sig") as source:
        first = source.readline()
        delimiter = max(",;\t|", key=first.count) if any(d in first for d in ",;\t|") else ","
        header = [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter), [])]
        column = next((header.index(name) for name in PHONE_COLUMNS if name in header), None)
        start, lines = (2, source) if column is not None else (1, chain([first], source))
        for line, row in enumerate(csv.reader(lines, delimiter=delimiter), start=start):
            cell = row[column or 0].strip() if len(row) > (column or 0) else ""
            if cell and not cell.startswith("#"):
                yield line, cell


def _add_batch(api: Api, batch: list[tuple[int, str]], reason: str | None, errors: list[str]) -> tuple[int, int]:
    """POST one batch; numbers the API refuses (422 naming numbers[i]) are noted in `errors` and the rest
    sent again."""
    try:
        answer = api.post("/v1/dnc", {"numbers": [n for _, n in batch], "reason": reason})
    except ApiError as exc:
        bad = {int(m.group(1)): why for key, why in exc.fields.items() if (m := INDEX.match(key))}
        if exc.status != 422 or not bad:
            raise
        errors.extend(f"Row {batch[i][0]}: {why}" for i, why in sorted(bad.items()) if i < len(batch))
        rest = [item for i, item in enumerate(batch) if i not in bad]
        return _add_batch(api, rest, reason, errors) if rest else (0, 0)
    return int(answer["added"]), int(answer["already_listed"])


@dnc_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="one number a line, or a CSV with a phone_number column")],
    reason: Reason = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Add every number of a file to the list (10,000 a request).

    Numbers the API refuses are printed and written to FILE-errors.csv (row = line of the file); the others
    are added."""
    try:
        total = sum(1 for _ in numbers_in(file))
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiError(f"cannot read {file}: {exc}", "give a UTF-8 text or CSV file of numbers") from exc
    added = already = 0
    errors: list[str] = []
    columns = (TextColumn("adding"), BarColumn(), MofNCompleteColumn())
    with connect(url, api_key) as api, Progress(*columns, console=err_console(), transient=True) as progress:
        task = progress.add_task("dnc", total=total)
        numbers = numbers_in(file)
        while batch := list(islice(numbers, BATCH)):
            new, old = _add_batch(api, batch, reason, errors)
            added, already = added + new, already + old
            progress.advance(task, len(batch))
    written = errors_path(file) if errors else None
    if written is not None:
        write_errors(written, errors)
    report = {"numbers": total, "added": added, "already_listed": already, "rejected": len(errors), "errors": errors}
    if as_json:
        print_json(report)
        return
    typer.echo(f"{total} numbers: {added} added, {already} already listed, {len(errors)} rejected")
    for error in errors:
        typer.echo(f"  {error}")
    if written is not None:
        typer.echo(f"errors written to {written}")
