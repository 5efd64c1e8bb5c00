"""Webhook endpoints, each one's deliveries (with their attempts) and a button to send one again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dialwave.api import serialize
from dialwave.errors import DialwaveError
from dialwave.services import webhooks as webhook_service
from dialwave.web.core import Signed, WebRoute, Writes, ctx, notice, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

PAGE = 50
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
NOTICES = {"retried": "The delivery is queued to be sent again now."}


@router.get("/webhooks")
async def webhooks_page(request: Request, session: Signed) -> Response:
    rows, more = await webhook_service.list_endpoints(ctx(request).db, session.principal.organization_id, 500, None)
    return render(request, "webhooks.html", session=session, endpoints=[serialize.endpoint(r) for r in rows], more=more)


async def _endpoint_page(
    request: Request,
    session: Any,
    endpoint_id: str,
    status: str | None,
    cursor: str | None,
    *,
    code: int = 200,
    error: str | None = None,
    notice_text: str | None = None,
) -> Response:
    db, org_id = ctx(request).db, session.principal.organization_id
    endpoint = await webhook_service.get_endpoint(db, org_id, endpoint_id)
    found, nxt = await webhook_service.list_deliveries(db, org_id, endpoint_id, status, PAGE, cursor)
    return render(
        request,
        "webhook.html",
        status=code,
        session=session,
        endpoint=serialize.endpoint(endpoint),
        deliveries=[serialize.delivery(r, attempts) for r, attempts in found],
        next_cursor=nxt,
        status_filter=status or "",
        statuses=DELIVERY_STATUSES,
        error=error,
        notice=notice_text,
    )


@router.get("/webhooks/{endpoint_id}")
async def webhook_page(
    request: Request,
    endpoint_id: str,
    session: Signed,
    status: str | None = Query(None, max_length=20),
    cursor: str | None = Query(None, max_length=200),
    notice: str | None = Query(None, max_length=20),
) -> Response:
    wanted = status if status in DELIVERY_STATUSES else None
    return await _endpoint_page(request, session, endpoint_id, wanted, cursor, notice_text=_notice(notice))


def _notice(code: str | None) -> str | None:
    return notice(code, NOTICES)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(request: Request, endpoint_id: str, delivery_id: str, posted: Writes) -> Response:
    context = ctx(request)
    org_id = posted.session.principal.organization_id
    try:
        await webhook_service.retry_delivery(context.db, org_id, endpoint_id, delivery_id, context.clock.now())
    except DialwaveError as exc:
        if exc.status_code == 404:
            raise
        return await _endpoint_page(
            request, posted.session, endpoint_id, None, None, code=exc.status_code, error=exc.message
        )
    return redirect(f"/webhooks/{endpoint_id}?notice=retried")
