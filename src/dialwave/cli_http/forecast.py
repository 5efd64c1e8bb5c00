"""`dialwave forecast ID [--set pacing.max_concurrency=40 ...]`: when a campaign will be done, as it is or
with changes (POST /v1/campaigns/{id}/forecast {"changes": {...}}, the changes shaped as a PATCH)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from dialwave.cli_http.client import DEFAULT_URL, ApiError
from dialwave.cli_http.common import ApiKey, AsJson, Url, cell, connect, console, duration, parse_time, print_json

FORECAST_TIMEOUT = 300.0  # the server runs the engine over every remaining lead
SET_HINT = "--set takes a dotted path and a value: --set pacing.max_concurrency=40"


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`["pacing.max_concurrency=40", "schedule.timezone=Europe/Paris"]` -> `{"pacing": {"max_concurrency":
    40}, "schedule": {"timezone": "Europe/Paris"}}`. A value is JSON when it parses as JSON (40, true, null,
    [...], {...}), else the string as written; a later --set of the same path wins."""
    changes: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        keys = [key.strip() for key in path.split(".")]
        if not sep or not all(keys):
            raise ApiError(f"--set {item!r}: expected PATH=VALUE with a dotted PATH", SET_HINT)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = changes
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                raise ApiError(f"--set {item!r}: {where} is already set to {json.dumps(child)}", SET_HINT)
            node = child
        node[keys[-1]] = value
    return changes


def print_forecast(answer: dict[str, Any]) -> None:
    out = console()
    done = parse_time(answer.get("completes_at"))
    if done is None:
        out.print("[bold]completes at[/]  not within the forecast (it does not finish)")
    else:
        out.print(f"[bold]completes at[/]  {cell(answer['completes_at'])} (in {duration(done - datetime.now(UTC))})")
    out.print(f"[bold]attempts[/]      {answer.get('attempts', 0):,}")
    outcomes: dict[str, int] = answer.get("outcomes") or {}
    if outcomes:
        table = Table(title="outcomes", show_edge=False, header_style="bold", title_justify="left")
        table.add_column("outcome")
        table.add_column("calls", justify="right")
        table.add_column("share", justify="right")
        total = sum(outcomes.values()) or 1
        for outcome, n in sorted(outcomes.items(), key=lambda kv: -kv[1]):
            table.add_row(outcome, f"{n:,}", f"{100 * n / total:.0f}%")
        out.print(table)
    hourly: list[dict[str, Any]] = answer.get("hourly") or []
    if hourly:
        table = Table(title="by hour", show_edge=False, header_style="bold", title_justify="left")
        table.add_column("hour")
        table.add_column("attempts", justify="right")
        table.add_column("answered", justify="right")
        table.add_column("")
        peak = max(int(h.get("attempts", 0)) for h in hourly) or 1
        for hour in hourly:
            attempts = int(hour.get("attempts", 0))
            bar = "#" * round(30 * attempts / peak)
            table.add_row(cell(hour.get("hour")), f"{attempts:,}", f"{int(hour.get('answered', 0)):,}", bar)
        out.print(table)
    basis: dict[str, Any] = answer.get("basis") or {}
    if basis:
        out.print("[bold]basis[/]")
        for key, value in basis.items():
            if value is None:
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k} {cell(v)}" for k, v in value.items())
            out.print(f"  {key}: {cell(value)}", markup=False)


def forecast(
    campaign_id: Annotated[str, typer.Argument(help="the campaign id (cmp_...)")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="a change to try, as PATH=VALUE (repeatable): --set pacing.max_concurrency=40"),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Forecast when a campaign completes, its attempts, outcomes and hourly load.

    With --set, as if the campaign had those changes (nothing is changed)."""
    changes = parse_sets(set_ or [])
    with connect(url, api_key) as api:
        try:
            body = {"changes": changes} if changes else {}
            answer = api.post(f"/v1/campaigns/{campaign_id}/forecast", body, timeout=FORECAST_TIMEOUT)
        except ApiError as exc:
            if exc.status == 405 or (exc.status == 404 and exc.message.startswith("404 Not Found")):
                raise ApiError(
                    f"{api.url} has no forecast endpoint (POST /v1/campaigns/{{id}}/forecast)",
                    "upgrade the server; `dialwave simulate` forecasts from a scenario file",
                    exc.status,
                ) from exc
            raise
    if as_json:
        print_json(answer)
    else:
        print_forecast(answer)
