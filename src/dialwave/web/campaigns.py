"""The campaigns list (`/`) and a campaign's page: live counts (server-sent events), the per-minute chart,
pause / resume / cancel, pacing and windows, and the forecast with its "what if" box."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from dialwave.api import serialize
from dialwave.api.deps import AppContext
from dialwave.domain import campaign_rules as rules
from dialwave.engine import forecast
from dialwave.errors import DialwaveError, ValidationFailed
from dialwave.services import activity, campaign_waiting
from dialwave.services import campaigns as campaign_service
from dialwave.services.sessions import Session, session_of
from dialwave.web.core import SESSION_COOKIE, Signed, WebRoute, Writes, ctx, notice, redirect, render, wall_now
from dialwave.web.view import chart, state_view

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

CHART_MINUTES = 30
LIST_LIMIT = 200
ACTIONS = ("start", "pause", "resume", "cancel")
NOTICES = {
    "start": "Campaign started.",
    "pause": "Campaign paused: no new call starts.",
    "resume": "Campaign resumed.",
    "cancel": "Campaign cancelled.",
    "saved": "Settings saved.",
}
# Form fields of the settings form, and the campaign paths whose errors are shown beside each.
FIELD_OF_PATH = (
    ("pacing.max_concurrency", "max_concurrency"),
    ("pacing.attempts_per_second", "attempts_per_second"),
    ("schedule.windows", "windows"),
    ("schedule.timezone", "timezone"),
    ("pacing", "max_concurrency"),
    ("schedule", "windows"),
)
StatusFilter = Literal["draft", "scheduled", "active", "paused", "completed", "cancelled"]


# -- state -----------------------------------------------------------------------------------------
def _snapshot(context: AppContext, org_id: str, campaign_id: str) -> activity.Snapshot:
    """The campaign as the API's stream sends it, plus the figures the page shows (`view`)."""
    base = activity.campaign_snapshot(context.db, org_id, campaign_id, context.clock, serialize.campaign)

    async def snapshot() -> dict[str, Any]:
        state = await base()
        return {**state, "view": state_view(state)}

    return snapshot


async def _campaigns(context: AppContext, org_id: str, status: str | None) -> list[dict[str, Any]]:
    rows, _ = await campaign_service.list_campaigns(context.db, org_id, status, LIST_LIMIT, None)
    now = context.clock.now()
    waiting = await campaign_waiting.waiting(context.db, rows, now)
    out = []
    for row in rows:
        state = serialize.campaign(row, waiting[row["id"]])
        quiet = row["status"] == rules.DRAFT or (row["status"] in rules.FINAL and not row["count_in_progress"])
        live = {"in_flight": 0, "claimed": 0, "attempts_last_minute": 0}
        state["live"] = live if quiet else await activity.live(context.db, row["id"], now)
        out.append({**state, "view": state_view(state)})
    return out


def _sse(request: Request, session: Session, events: AsyncIterator[tuple[str, dict[str, Any]]]) -> StreamingResponse:
    """Server-sent events while the session lasts: a revoked key (or an expired session) ends the stream
    with `event: signed-out` at its next event (a heartbeat at the latest)."""
    db, cookie = ctx(request).db, request.cookies.get(SESSION_COOKIE)

    async def body() -> AsyncIterator[str]:
        async for name, data in events:
            if await session_of(db, cookie, wall_now()) is None:
                yield "event: signed-out\ndata: {}\n\n"
                return
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


# -- the list --------------------------------------------------------------------------------------
@router.get("/")
async def campaigns_page(request: Request, session: Signed, status: StatusFilter | None = None) -> Response:
    campaigns = await _campaigns(ctx(request), session.principal.organization_id, status)
    return render(request, "campaigns.html", session=session, campaigns=campaigns, status_filter=status)


@router.get("/events")
async def campaigns_events(request: Request, session: Signed, status: StatusFilter | None = None) -> Response:
    """`event: campaigns` with every listed campaign's state (by id), first and on every change."""
    context = ctx(request)

    async def snapshot() -> dict[str, Any]:
        found = await _campaigns(context, session.principal.organization_id, status)
        return {"status": "listing", "campaigns": {c["id"]: c for c in found}}

    settings = context.settings
    changes = activity.changes(
        snapshot,
        poll_seconds=max(1.0, settings.stream_poll_seconds),
        heartbeat_seconds=settings.stream_heartbeat_seconds,
    )

    async def renamed() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for name, data in changes:
            yield ("campaigns" if name == "campaign" else name), data

    return _sse(request, session, renamed())


# -- one campaign -----------------------------------------------------------------------------------
async def _page(
    request: Request,
    session: Session,
    campaign_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    notice_text: str | None = None,
) -> Response:
    context = ctx(request)
    org_id = session.principal.organization_id
    state = await _snapshot(context, org_id, campaign_id)()
    minutes = await activity.per_minute(context.db, org_id, campaign_id, context.clock.now(), CHART_MINUTES)
    return render(
        request,
        "campaign.html",
        status=status,
        session=session,
        c=state,
        chart=chart(minutes),
        form=form or settings_form(state),
        errors=errors or {},
        error=error,
        notice=notice_text,
        actions=ACTIONS,
    )


@router.get("/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: str, session: Signed, notice: str | None = Query(None, max_length=20)
) -> Response:
    return await _page(request, session, campaign_id, notice_text=_notice(notice))


def _notice(code: str | None) -> str | None:
    return notice(code, NOTICES)


@router.get("/campaigns/{campaign_id}/events")
async def campaign_events(request: Request, campaign_id: str, session: Signed) -> Response:
    """`event: campaign` (as GET /v1/campaigns/{id}/stream sends it, plus `view`), first and on change."""
    context = ctx(request)
    org_id = session.principal.organization_id
    await campaign_service.get_campaign(context.db, org_id, campaign_id)  # a 404 before the stream starts
    settings = context.settings
    events = activity.changes(
        _snapshot(context, org_id, campaign_id),
        poll_seconds=settings.stream_poll_seconds,
        heartbeat_seconds=settings.stream_heartbeat_seconds,
    )
    return _sse(request, session, events)


@router.get("/campaigns/{campaign_id}/chart")
async def campaign_chart(request: Request, campaign_id: str, session: Signed) -> Response:
    """The per-minute chart alone (the page refreshes it)."""
    context = ctx(request)
    org_id = session.principal.organization_id
    minutes = await activity.per_minute(context.db, org_id, campaign_id, context.clock.now(), CHART_MINUTES)
    return render(request, "_chart.html", session=session, chart=chart(minutes))


def _action(name: str) -> Callable[..., Awaitable[Response]]:
    async def act(request: Request, campaign_id: str, posted: Writes) -> Response:
        context = ctx(request)
        org_id = posted.session.principal.organization_id
        try:
            await campaign_service.act(context.db, org_id, campaign_id, name, context.clock.now())
        except DialwaveError as exc:
            if exc.status_code == 404:
                raise
            return await _page(request, posted.session, campaign_id, status=exc.status_code, error=exc.message)
        context.engine.signal(org_id, campaign_id)  # a pause stops new dials before this answers
        return redirect(f"/campaigns/{campaign_id}?notice={name}")

    act.__name__ = f"campaign_{name}"
    return act


for _name in ACTIONS:
    router.add_api_route(f"/campaigns/{{campaign_id}}/{_name}", _action(_name), methods=["POST"])


# -- settings (pacing and windows) ---------------------------------------------------------------
def settings_form(state: dict[str, Any]) -> dict[str, str]:
    pacing, schedule = state["pacing"], state["schedule"]
    return {
        "max_concurrency": str(pacing["max_concurrency"]),
        "attempts_per_second": f"{pacing['attempts_per_second']:g}",
        "windows": ", ".join(f"{w['start']}-{w['end']}" for w in schedule["windows"]),
        "timezone": schedule["timezone"],
        "version": str(state["version"]),
    }


def parse_windows(text: str) -> list[dict[str, str]]:
    """`09:00-12:00, 14:00-18:00` -> [{"start": "09:00", "end": "12:00"}, ...] (times checked later)."""
    windows = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        start, sep, end = part.strip().partition("-")
        if not sep or not start.strip() or not end.strip():
            raise ValidationFailed(
                "schedule.windows: write each window as start-end, e.g. 09:00-12:00, 14:00-18:00",
                fields={"schedule.windows": "write each window as start-end, e.g. 09:00-12:00, 14:00-18:00"},
            )
        windows.append({"start": start.strip(), "end": end.strip()})
    return windows


def _number(text: str, path: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValidationFailed(f"{path}: must be {what}", fields={path: f"must be {what}"}) from None


def patch_of(form: dict[str, str], *, partial: bool = False) -> dict[str, Any]:
    """The campaign merge-patch of the settings form (`partial`: only the fields given, for "what if")."""
    pacing: dict[str, Any] = {}
    schedule: dict[str, Any] = {}
    if form.get("max_concurrency") or not partial:
        pacing["max_concurrency"] = _number(form.get("max_concurrency", ""), "pacing.max_concurrency", int)
    if form.get("attempts_per_second") or not partial:
        pacing["attempts_per_second"] = _number(
            form.get("attempts_per_second", ""), "pacing.attempts_per_second", float
        )
    if form.get("windows") or not partial:
        schedule["windows"] = parse_windows(form.get("windows", ""))
    if form.get("timezone") or not partial:
        schedule["timezone"] = form.get("timezone", "")
    return {k: v for k, v in (("pacing", pacing), ("schedule", schedule)) if v}


def form_errors(fields: dict[str, str]) -> dict[str, str]:
    """Each error beside the form field it is about (`schedule.windows[1].end` -> windows)."""
    out: dict[str, str] = {}
    for path, message in fields.items():
        field = next((f for p, f in FIELD_OF_PATH if path == p or path.startswith((p + ".", p + "["))), None)
        out.setdefault(field or "general", f"{path}: {message}" if field is None else message)
    return out


@router.post("/campaigns/{campaign_id}/settings")
async def campaign_settings(request: Request, campaign_id: str, posted: Writes) -> Response:
    context = ctx(request)
    org_id = posted.session.principal.organization_id
    form = {k: posted.text(k) for k in ("max_concurrency", "attempts_per_second", "windows", "timezone", "version")}
    try:
        patch = patch_of(form)
        await campaign_service.update_campaign(
            context.db, org_id, campaign_id, patch, form["version"] or None, context.clock.now(), context.url_guard
        )
    except DialwaveError as exc:
        if exc.status_code == 404:
            raise
        errors = form_errors(exc.fields)
        return await _page(
            request, posted.session, campaign_id, status=exc.status_code, error=exc.message, errors=errors, form=form
        )
    context.engine.signal(org_id, campaign_id)
    return redirect(f"/campaigns/{campaign_id}?notice=saved")


# -- forecast ------------------------------------------------------------------------------------------
async def run_forecast(
    context: AppContext, org_id: str, campaign_id: str, changes: dict[str, Any], now: datetime
) -> tuple[dict[str, Any] | None, str | None]:
    """(the forecast, None) or (None, why there is none: a finished campaign, a refused change)."""
    try:
        return await forecast.forecast(context.db, org_id, campaign_id, changes, now), None
    except DialwaveError as exc:
        if exc.status_code == 404:
            raise
        return None, exc.message


@router.get("/campaigns/{campaign_id}/forecast")
async def campaign_forecast(
    request: Request,
    campaign_id: str,
    session: Signed,
    max_concurrency: str | None = Query(None, max_length=12),
    attempts_per_second: str | None = Query(None, max_length=12),
    windows: str | None = Query(None, max_length=400),
) -> Response:
    """The ETA, and with any field given, the same campaign with those changes ("what if")."""
    context = ctx(request)
    org_id = session.principal.organization_id
    row = await campaign_service.get_campaign(context.db, org_id, campaign_id)
    now = context.clock.now()
    asked = {"max_concurrency": max_concurrency, "attempts_per_second": attempts_per_second, "windows": windows}
    given = {k: v.strip() for k, v in asked.items() if v and v.strip()}
    base, why = await run_forecast(context, org_id, campaign_id, {}, now)
    what_if, what_if_why, errors = None, None, {}
    if given:
        try:
            what_if, what_if_why = await run_forecast(context, org_id, campaign_id, patch_of(given, partial=True), now)
        except ValidationFailed as exc:
            errors = form_errors(exc.fields)
    template = "_forecast.html" if request.headers.get("x-fragment") else "forecast.html"
    return render(
        request,
        template,
        session=session,
        campaign={"id": row["id"], "name": row["name"]},
        base=base,
        why=why,
        what_if=what_if,
        what_if_why=what_if_why,
        given=given,
        errors=errors,
        defaults=settings_form({**row["config"], "version": row["version"]}),
    )
