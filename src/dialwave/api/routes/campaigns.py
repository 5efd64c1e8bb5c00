"""/v1/campaigns: CRUD, merge-patch updates and status actions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.engine import RowMapping

from dialwave.api import serialize
from dialwave.api.deps import Context, Db, Engine, Guard, Now, Reader, Writer, partial
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import ActivityOut, CampaignOut, ForecastIn, ForecastOut, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.engine import forecast
from dialwave.services import activity, audit, campaign_waiting
from dialwave.services import campaigns as service
from dialwave.store.db import Database
from dialwave.webhooks.events import iso

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], route_class=StrictJSONRoute)

CampaignPatch = partial(CampaignConfig, "CampaignPatch")
Status = Literal["draft", "scheduled", "active", "paused", "completed", "cancelled"]

CREATE_EXAMPLE = {
    "name": "Q1 Sales Outreach",
    "description": "Book demos with trial users",
    "type": "sales",
    "agent_id": "agt_01jd3m0f8x9v7k2q4r6t8w0y2a",
    "caller_ids": [{"phone_number_id": "pn_01jd3m0f8x9v7k2q4r6t8w0y2a", "weight": 1}],
    "schedule": {
        "timezone": "America/New_York",
        "days_of_week": [1, 2, 3, 4, 5],
        "windows": [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "18:00"}],
        "recipient_local_time": True,
    },
    "pacing": {"max_concurrency": 20, "attempts_per_second": 2},
    "retry": {"max_attempts": 4, "on": {"busy": {"enabled": True, "max_retries": 2, "interval_minutes": [30, 120]}}},
    "dynamic_variables": {"company": "your company"},
    "webhook": {"url": "https://example.com/hooks/dialwave", "metadata": {"crm_list": "trials"}},
}
PATCH_EXAMPLES: Any = {
    "windows and time zone": {
        "value": {
            "schedule": {
                "windows": [{"start": "10:00", "end": "12:00"}, {"start": "14:00", "end": "16:00"}],
                "timezone": "America/Sao_Paulo",
            }
        }
    },
    "clear the end": {"value": {"schedule": {"end_at": None}}},
    "pacing while active": {"value": {"pacing": {"max_concurrency": 50, "attempts_per_second": 5}}},
}


async def _answer(
    db: Database, row: RowMapping, now: datetime, secret: str | None = None, status: int = 200
) -> JSONResponse:
    """The campaign as every operation answers it, with its version as the ETag."""
    waiting = (await campaign_waiting.waiting(db, [row], now))[row["id"]]
    body = serialize.campaign(row, waiting, secret)
    return JSONResponse(body, status_code=status, headers={"ETag": f'"{row["version"]}"'})


@router.post("", name="create", status_code=201, response_model=CampaignOut, responses=WRITE_ERRORS)
async def create_campaign(
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    engine: Engine,
    body: CampaignConfig = Body(openapi_examples={"sales": {"value": CREATE_EXAMPLE}}),
) -> JSONResponse:
    row, secret = await service.create_campaign(db, who.organization_id, body, now, guard)
    engine.signal(who.organization_id, row["id"])  # with a webhook.url, the engine starts writing events
    return await _answer(db, row, now, secret, status=201)


@router.get("", name="list", response_model=Page[CampaignOut], responses=READ_ERRORS)
async def list_campaigns(
    who: Reader,
    db: Db,
    now: Now,
    status: Status | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_campaigns(db, who.organization_id, status, limit, cursor)
    waiting = await campaign_waiting.waiting(db, rows, now)
    return JSONResponse(serialize.listing([serialize.campaign(r, waiting[r["id"]]) for r in rows], nxt))


@router.get("/{campaign_id}", name="get", response_model=CampaignOut, responses=READ_ERRORS)
async def get_campaign(campaign_id: str, who: Reader, db: Db, now: Now) -> JSONResponse:
    row = await service.get_campaign(db, who.organization_id, campaign_id)
    return await _answer(db, row, now)


@router.patch("/{campaign_id}", name="update", response_model=CampaignOut, responses=WRITE_ERRORS)
async def update_campaign(
    campaign_id: str,
    who: Writer,
    db: Db,
    now: Now,
    engine: Engine,
    guard: Guard,
    patch: CampaignPatch = Body(openapi_examples=PATCH_EXAMPLES),  # type: ignore[valid-type]
    if_match: str | None = Header(None, max_length=64, description="the version you read; stale -> 409"),
) -> JSONResponse:
    """JSON merge-patch (RFC 7396): send only what changes, `null` clears. Which fields may change depends
    on the status (the edit matrix): an active campaign takes pacing, windows, retry, DNC, webhook and caller
    ids at once; agent, overrides, variables and time zone need a pause first."""
    body: dict[str, Any] = patch.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    row, secret = await service.update_campaign(db, who.organization_id, campaign_id, body, if_match, now, guard)
    engine.signal(who.organization_id, campaign_id)
    return await _answer(db, row, now, secret)


@router.delete("/{campaign_id}", name="delete", status_code=204, responses=WRITE_ERRORS)
async def delete_campaign(campaign_id: str, who: Writer, db: Db, engine: Engine) -> Response:
    await service.delete_campaign(db, who.organization_id, campaign_id)
    engine.signal(who.organization_id, campaign_id)
    return Response(status_code=204)


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: campaign` with the campaign as GET answers it plus `live`"
        " (`in_flight`: calls handed to the carrier; `claimed`: leads about to be dialed;"
        " `attempts_last_minute`), first and on every change (at most every"
        " DIALWAVE_STREAM_POLL_SECONDS); `event: heartbeat` after DIALWAVE_STREAM_HEARTBEAT_SECONDS quiet."
        " The stream ends after a finished (completed or cancelled) campaign's state.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["campaign", "heartbeat"]},
                        "data": {"type": "string", "description": "JSON: the campaign (event campaign) or {}"},
                    },
                    "required": ["event", "data"],
                }
            }
        },
    },
    **READ_ERRORS,
}


@router.get("/{campaign_id}/stream", name="stream", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def stream_campaign(campaign_id: str, who: Reader, db: Db, context: Context) -> StreamingResponse:
    """The campaign's counts and status, live."""
    await service.get_campaign(db, who.organization_id, campaign_id)  # a 404 before the stream starts
    settings = context.settings
    snapshot = activity.campaign_snapshot(db, who.organization_id, campaign_id, context.clock, serialize.campaign)
    events = activity.changes(
        snapshot, poll_seconds=settings.stream_poll_seconds, heartbeat_seconds=settings.stream_heartbeat_seconds
    )

    async def body() -> AsyncIterator[str]:
        async for name, data in events:
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


AUDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV (RFC 4180, header first): one row per attempt (`kind` attempt) with the decision that"
        " allowed it, then one per lead skipped (`kind` skipped) with its reason. Columns: "
        + ", ".join(f"`{c}`" for c in audit.COLUMNS)
        + ". `zones`: `zone=local time` per zone, `; `-separated; `rules`, `dnc_lists`: `;`-separated."
        " Streamed in pages of 5,000 rows.",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(audit.COLUMNS)
                + "\nattempt,lead_01j...,call_01j...,1,+14155550123,+14155550100,2026-11-27T17:00:01Z,ended,"
                "answered,2026-11-27T17:00:09Z,2026-11-27T17:00:10Z,2026-11-27T17:01:40Z,false,"
                "2026-11-27T17:00:00+00:00,America/Los_Angeles=2026-11-27T09:00:00-08:00,US,organization,none,,\n",
            }
        },
    },
    **READ_ERRORS,
}


@router.get("/{campaign_id}/audit", name="audit", response_class=StreamingResponse, responses=AUDIT_RESPONSES)
async def campaign_audit(campaign_id: str, who: Reader, db: Db) -> StreamingResponse:
    """The campaign's audit trail as CSV: every attempt with the decision that allowed it (zones and the
    local time in each, rule ids, do-not-call lists checked, consent used), and every lead skipped with
    its reason (docs/compliance.md)."""
    await audit.check_campaign(db, who.organization_id, campaign_id)
    headers = {"Content-Disposition": f'attachment; filename="audit-{campaign_id}.csv"'}
    return StreamingResponse(audit.export(db, campaign_id), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/{campaign_id}/activity", name="activity", response_model=ActivityOut, responses=READ_ERRORS)
async def campaign_activity(
    campaign_id: str,
    who: Reader,
    db: Db,
    now: Now,
    minutes: int = Query(60, ge=1, le=1440, description="how many minutes back, up to now"),
) -> JSONResponse:
    """Attempts started per minute and their outcomes so far (`in_flight` for calls not ended), oldest first."""
    rows = await activity.per_minute(db, who.organization_id, campaign_id, now, minutes)
    return JSONResponse({"data": [{**r, "minute": iso(r["minute"])} for r in rows]})


@router.post("/{campaign_id}/forecast", name="forecast", response_model=ForecastOut, responses=WRITE_ERRORS)
async def forecast_campaign(
    campaign_id: str, who: Reader, db: Db, now: Now, body: ForecastIn | None = Body(None)
) -> JSONResponse:
    """When the campaign will finish, and its attempts and outcomes until then: the real engine on a
    virtual clock over its remaining leads, with the outcome mix and call lengths it has shown so far.
    `changes` asks "what if" (nothing is saved). A read key may forecast."""
    answer = await forecast.forecast(db, who.organization_id, campaign_id, body.changes if body else None, now)
    hourly = [{**h, "hour": iso(h["hour"])} for h in answer["hourly"]]
    return JSONResponse({**answer, "completes_at": iso(answer["completes_at"]), "hourly": hourly})


def _action(name: str, doc: str) -> None:
    async def handler(campaign_id: str, who: Writer, db: Db, now: Now, engine: Engine) -> JSONResponse:
        row = await service.act(db, who.organization_id, campaign_id, name, now)
        engine.signal(who.organization_id, campaign_id)  # a pause stops new dials before this answers
        return await _answer(db, row, now)

    handler.__doc__ = doc
    router.add_api_route(
        f"/{{campaign_id}}/{name}",
        handler,
        methods=["POST"],
        response_model=CampaignOut,
        responses=WRITE_ERRORS,
        name=name,
        summary=f"{name.capitalize()} a campaign",
    )


_action(
    "start",
    "draft -> active, or scheduled when schedule.start_at is in the future. Needs an agent, a caller id and leads.",
)
_action("pause", "active or scheduled -> paused: no new attempt starts once this answers.")
_action("resume", "paused -> active (or scheduled while schedule.start_at is ahead).")
_action("cancel", "Any non-final status -> cancelled; queued and retry-pending leads become cancelled.")
