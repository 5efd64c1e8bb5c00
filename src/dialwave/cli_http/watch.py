"""`dialwave campaigns watch ID`: a campaign's progress, live, from its event stream
(GET /v1/campaigns/{id}/stream), until it is finished.

The ETA comes from POST /v1/campaigns/{id}/forecast, asked at the start and every minute; a server
without that endpoint (404/405) gets a naive ETA from the pace instead, marked "(from pace)"."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dialwave.cli_http.client import DEFAULT_URL, Api, ApiError, Event
from dialwave.cli_http.common import ApiKey, Url, cell, connect, console, duration, parse_time

FINAL = ("completed", "cancelled")
DONE = ("completed", "failed", "skipped", "cancelled")
COUNTS = ("queued", "in_progress", "retry_pending", "completed", "failed", "skipped", "cancelled")
REFRESH_SECONDS = 60.0  # how often the forecast (and the last hour's outcomes) are asked again
READ_TIMEOUT = 60.0  # the stream sends a heartbeat every 15 s by default: a minute of silence is a dead link
GIVE_UP_SECONDS = 300.0  # reconnecting without an event for this long ends the watch with an error
FORECAST_TIMEOUT = 120.0  # the server runs the engine over the remaining leads: seconds for a big campaign


def done_of(campaign: dict[str, Any]) -> tuple[int, int]:
    """(leads finished, leads in all)."""
    counts = campaign.get("counts") or {}
    return sum(int(counts.get(k, 0)) for k in DONE), int(counts.get("total", 0))


def pace_eta(campaign: dict[str, Any], now: datetime) -> datetime | None:
    """A naive ETA: the leads not finished at the last minute's pace (every attempt counted as finishing a
    lead, so it is early when retries are due). None without a pace."""
    done, total = done_of(campaign)
    pace = int((campaign.get("live") or {}).get("attempts_last_minute", 0))
    if pace <= 0:
        return None
    return now + timedelta(minutes=(total - done) / pace)


@dataclass
class WatchState:
    """What the display shows; `follow` and the refreshes fill it in."""

    campaign_id: str
    started: float = field(default_factory=time.monotonic)
    campaign: dict[str, Any] | None = None
    forecast_at: datetime | None = None  # the forecast's completes_at
    forecast_note: str = ""  # why there is no forecast ETA, if there is none
    has_forecast_endpoint: bool = True
    outcomes: dict[str, int] = field(default_factory=dict)  # calls in the last hour, by outcome
    reconnects: int = 0
    next_refresh: float = 0.0
    refreshing: bool = False  # a refresh runs in the background

    def eta(self, now: datetime) -> str:
        if self.campaign is None:
            return ""
        if self.campaign["status"] in FINAL:
            return f"finished ({self.campaign['status']})"
        if self.forecast_at is not None and self.has_forecast_endpoint:
            return f"{self.forecast_at:%Y-%m-%d %H:%M} UTC (in {duration(self.forecast_at - now)}, forecast)"
        naive = pace_eta(self.campaign, now)
        if naive is None:
            return f"unknown: no attempts in the last minute (from pace){self.forecast_note}"
        return f"{naive:%Y-%m-%d %H:%M} UTC (in {duration(naive - now)}, from pace){self.forecast_note}"


def render(state: WatchState) -> RenderableType:
    camp = state.campaign
    if camp is None:
        return Text(f"connecting to the stream of {state.campaign_id}...")
    now = datetime.now(UTC)
    done, total = done_of(camp)
    counts = camp.get("counts") or {}
    live = camp.get("live") or {}
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(total, 1), completed=done, width=40), f"{done}/{total} leads done")
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    status = camp["status"] + (f" ({camp['status_reason']})" if camp.get("status_reason") else "")
    info.add_row("status", status)
    info.add_row("leads", "  ".join(f"{k} {counts.get(k, 0)}" for k in COUNTS))
    if state.outcomes:
        info.add_row("calls, last hour", "  ".join(f"{k} {n}" for k, n in sorted(state.outcomes.items())))
    info.add_row(
        "pace",
        f"{live.get('attempts_last_minute', 0)} attempts/min   in flight {live.get('in_flight', 0)}"
        f"   about to dial {live.get('claimed', 0)}",
    )
    if camp.get("waiting_reason") or camp.get("next_dial_at"):
        info.add_row(
            "waiting", f"{camp.get('waiting_reason') or ''}  next dial {cell(camp.get('next_dial_at')) or '-'}"
        )
    info.add_row("ETA", state.eta(now))
    elapsed = duration(timedelta(seconds=time.monotonic() - state.started))
    footer = f"watching for {elapsed}" + (f", reconnected {state.reconnects}x" if state.reconnects else "")
    title = Text(f"{camp['id']}  {camp.get('name', '')}", style="bold")
    return Group(title, bar, info, Text(footer, style="dim"))


def refresh(api: Api, state: WatchState, forecast: bool = True) -> None:
    """Ask the forecast (unless the server has none) and the last hour's call outcomes again."""
    path = f"/v1/campaigns/{state.campaign_id}"
    state.next_refresh = time.monotonic() + REFRESH_SECONDS
    if forecast and state.has_forecast_endpoint:
        try:
            answer = api.post(f"{path}/forecast", {}, timeout=FORECAST_TIMEOUT)
            state.forecast_at = parse_time(answer.get("completes_at"))
            state.forecast_note = "" if state.forecast_at else "; the forecast sees no end"
        except ApiError as exc:
            if exc.status in (404, 405):
                state.has_forecast_endpoint = False  # an older server: the pace it is
                state.forecast_note = ""
            else:
                state.forecast_at, state.forecast_note = None, f"; forecast failed: {exc.message}"
    try:
        minutes = api.get(f"{path}/activity", minutes=60)["data"]
    except (ApiError, KeyError, TypeError):
        return
    outcomes: dict[str, int] = {}
    for minute in minutes:
        for outcome, n in (minute.get("outcomes") or {}).items():
            if outcome != "in_flight":  # a minute old by the next refresh: the pace row has it live
                outcomes[outcome] = outcomes.get(outcome, 0) + int(n)
    state.outcomes = outcomes


def refresh_in_background(api: Api, state: WatchState) -> None:
    """Start a refresh unless one runs: the stream and the display go on while the server forecasts."""
    if state.refreshing:
        return
    state.refreshing = True
    state.next_refresh = time.monotonic() + REFRESH_SECONDS

    def run() -> None:
        try:
            refresh(api, state)
        finally:
            state.refreshing = False

    threading.Thread(target=run, name="dialwave-watch-refresh", daemon=True).start()


def follow(api: Api, state: WatchState, on_event: Callable[[Event], None], sleep: Callable[[float], None]) -> None:
    """Read the campaign's stream until it ends with a finished campaign, reconnecting when it drops
    (or ends early) while the campaign is not finished."""
    path = f"/v1/campaigns/{state.campaign_id}/stream"
    last_event = time.monotonic()
    backoff = 0.5
    while True:
        try:
            for event in api.events(path, READ_TIMEOUT):
                last_event, backoff = time.monotonic(), 0.5
                if event.name == "campaign":
                    state.campaign = event.data
                on_event(event)
            if state.campaign is not None and state.campaign["status"] in FINAL:
                return
        except httpx.TransportError as exc:
            if state.campaign is None:
                api.unreachable(exc)  # never connected: say so now, with the hint
            if time.monotonic() - last_event > GIVE_UP_SECONDS:
                raise ApiError(
                    f"the stream of {state.campaign_id} stayed away for {GIVE_UP_SECONDS:.0f} s ({type(exc).__name__})",
                    "is `dialwave serve` still running? run the watch again",
                ) from exc
        state.reconnects += 1
        sleep(backoff)
        backoff = min(backoff * 2, 10.0)


def watch(
    campaign_id: str,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="print each event as one JSON line")] = False,
) -> None:
    """Follow a campaign live until it is completed or cancelled (exit 0).

    Progress bar, lead counts, call outcomes of the last hour, pace, calls in flight, why it waits, ETA."""
    state = WatchState(campaign_id)
    try:
        _watch(state, url, api_key, as_json)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None  # Ctrl-C: stop watching, quietly (the campaign goes on)


def _watch(state: WatchState, url: str, api_key: str | None, as_json: bool) -> None:
    campaign_id = state.campaign_id
    with connect(url, api_key) as api:
        if as_json:
            follow(api, state, lambda e: typer.echo(json.dumps({"event": e.name, "data": e.data})), time.sleep)
            return
        out = console()
        with Live(console=out, get_renderable=lambda: render(state), refresh_per_second=4) as live:

            def on_event(event: Event) -> None:
                camp = state.campaign
                if camp is not None and camp["status"] not in FINAL and time.monotonic() >= state.next_refresh:
                    refresh_in_background(api, state)
                live.refresh()

            follow(api, state, on_event, time.sleep)
            refresh(api, state, forecast=False)  # the last hour's outcomes once more for the final display
            live.refresh()
        if not out.is_terminal:
            out.line()  # rich ends the last render with a newline only on a terminal
    camp = state.campaign or {}
    done, total = done_of(camp)
    elapsed = duration(timedelta(seconds=time.monotonic() - state.started))
    typer.echo(f"campaign {campaign_id} {camp.get('status')}: {done}/{total} leads done (watched {elapsed})")
