"""`dialwave leads import FILE --campaign ID`: stream a CSV to POST /v1/campaigns/{id}/leads/import with a
progress bar, print the report and the row errors, and write the row errors to FILE-errors.csv beside it."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from dialwave.cli_http.client import DEFAULT_URL, ApiError
from dialwave.cli_http.common import ApiKey, Url, connect, err_console, print_json

leads_app = typer.Typer(help="Leads of a campaign", no_args_is_help=True)

CHUNK = 256 * 1024
ROW = re.compile(r"^Row (\d+): (.*)$", re.DOTALL)


def errors_path(file: Path) -> Path:
    """leads.csv -> leads-errors.csv, in the same directory."""
    return file.with_name(f"{file.stem}-errors{file.suffix or '.csv'}")


def parse_row_error(error: str) -> tuple[int | None, str]:
    """ "Row 3: invalid phone number '+1234'" -> (3, "invalid phone number '+1234'"); other errors keep no row."""
    match = ROW.match(error)
    return (int(match.group(1)), match.group(2)) if match else (None, error)


def write_errors(path: Path, errors: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "error"])
        for error in errors:
            row, why = parse_row_error(error)
            writer.writerow(["" if row is None else row, why])


def chunks_of(file: Path, progress: Progress, task: Any) -> Iterator[bytes]:
    with file.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
            progress.advance(task, len(chunk))
    progress.update(task, description="stored by the server...")


@leads_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="a CSV file: a phone_number column, every other column a variable")],
    campaign: Annotated[str, typer.Option("--campaign", help="the campaign id (cmp_...)")],
    default_region: Annotated[
        str | None, typer.Option("--default-region", help="region of numbers without + (e.g. US)")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's report as JSON")] = False,
) -> None:
    """Import leads from a CSV file, streamed, with a progress bar.

    Rows with errors are skipped; they are printed and written to FILE-errors.csv (columns row, error)
    beside the file. Exit code 0 even with row errors."""
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ApiError(f"cannot read {file}: {exc.strerror or exc}", "give the path of a CSV file") from exc
    if not file.is_file():
        raise ApiError(f"{file} is not a file", "give the path of a CSV file")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with connect(url, api_key) as api, Progress(*columns, console=err_console(), transient=True) as progress:
        task = progress.add_task(f"sending {file.name}", total=size)
        report: dict[str, Any] = api.upload(
            f"/v1/campaigns/{campaign}/leads/import",
            chunks_of(file, progress, task),
            size,
            {"default_region": default_region},
        )
    errors: list[str] = report.get("errors") or []
    written = errors_path(file) if errors else None
    if written is not None:
        write_errors(written, errors)
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"{report['rows']} rows: {report['accepted']} accepted, {report['rejected']} rejected, "
        f"{report['duplicates']} duplicates, {report['dnc']} on a do-not-call list"
    )
    for error in errors:
        typer.echo(f"  {error}")
    if report.get("errors_truncated"):
        typer.echo(f"  ... only the first {len(errors)} errors are listed by the server")
    if written is not None:
        typer.echo(f"{report['rejected']} rows had errors (imported the rest); errors written to {written}")
