"""What every API command shares: the --url/--api-key/--json options, reading a JSON file, and output
(a rich table or the raw JSON)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dialwave.cli_http.client import Api, ApiError

Url = Annotated[str, typer.Option("--url", envvar="DIALWAVE_URL", help="the API's base URL")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="DIALWAVE_API_KEY", help="an API key (dialwave keys create)", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the API's JSON (for scripts)")]
Limit = Annotated[int, typer.Option("--limit", min=0, help="how many to list (0: all), following the cursor")]
BodyFile = Annotated[Path, typer.Option("--file", "-f", help="a JSON file with the body ('-': standard input)")]


def console() -> Console:
    """Standard output; piped, as wide as a table needs (up to 200) rather than 80 columns."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=200 if piped else None)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def connect(url: str, api_key: str | None) -> Api:
    return Api(url, api_key)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def read_json(path: Path) -> Any:
    """The JSON in `path` ('-': standard input), or a one-line error saying where it is broken."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ApiError(f"cannot read {path}: {exc.strerror or exc}", "check the --file path") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(f"{path} is not JSON: {exc}", "the body is the API's JSON; see docs/api.md") from exc


ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]00:00)$")
WRAPPED = ("name", "friendly_name", "reason", "waiting_reason")  # the other columns never wrap


def cell(value: Any) -> str:
    """A table cell: empty for null, yes/no, compact JSON, a UTC time to the second."""
    if isinstance(value, str) and (moment := ISO.match(value)):
        return f"{moment.group(1)} {moment.group(2)}Z"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def field(name: str) -> Column:
    return name, lambda row: row.get(name)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], more: str | None = None) -> None:
    """A rich table of `rows`, then how many and whether there are more (`more`: the next cursor)."""
    out = console()
    if not rows:
        out.print("(none)")
        return
    table = Table(show_edge=False, header_style="bold")
    for title, _ in columns:
        table.add_column(title, overflow="fold", no_wrap=title not in WRAPPED)
    for row in rows:
        table.add_row(*(cell(get(row)) for _, get in columns))
    out.print(table)
    out.print(f"{len(rows)} shown" + (" (more: raise --limit, or --limit 0 for all)" if more else ""))


def print_listing(page: dict[str, Any], columns: Sequence[Column], as_json: bool) -> None:
    if as_json:
        print_json(page)
    else:
        print_table(page["data"], columns, page.get("next_cursor"))


def print_object(obj: Any, as_json: bool, line: str | None = None) -> None:
    """One object: the JSON with --json, else `line` when given, else the JSON highlighted."""
    if as_json:
        print_json(obj)
    elif line is not None:
        typer.echo(line)
    else:
        console().print_json(data=obj)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration(delta: timedelta) -> str:
    """`2d 3h`, `1h 05m`, `4m 10s`, `12s`."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
