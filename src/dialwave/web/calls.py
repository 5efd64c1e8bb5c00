"""The organization's calls, filtered by campaign, outcome and number."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dialwave.api import serialize
from dialwave.errors import ValidationFailed
from dialwave.services import calls as call_service
from dialwave.web.core import Signed, WebRoute, ctx, render

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

PAGE = 50
OUTCOMES = ("answered", "voicemail", "busy", "no_answer", "failed", "provider_error", "short_duration", "opted_out")


@router.get("/calls")
async def calls_page(
    request: Request,
    session: Signed,
    campaign_id: str | None = Query(None, max_length=40),
    outcome: str | None = Query(None, max_length=20),
    phone_number: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    filters = {
        "campaign_id": (campaign_id or "").strip() or None,
        "outcome": outcome if outcome in OUTCOMES else None,
        "phone_number": (phone_number or "").strip() or None,
    }
    error = None
    try:
        rows, nxt = await call_service.list_calls(
            ctx(request).db, session.principal.organization_id, filters, PAGE, cursor
        )
    except ValidationFailed as exc:
        rows, nxt, error = [], None, exc.message
    return render(
        request,
        "calls.html",
        session=session,
        calls=[serialize.call(r) for r in rows],
        next_cursor=nxt,
        filters={k: v or "" for k, v in filters.items()},
        outcomes=OUTCOMES,
        error=error,
    )
