"""/v1/webhook-endpoints: the organization's webhook endpoints, their delivery log and re-sends."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import Db, Engine, Guard, Now, Reader, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import DeliveryOut, EndpointCreated, EndpointIn, EndpointOut, EndpointPatch, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import webhooks as service

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhook-endpoints"], route_class=StrictJSONRoute)

CREATE_EXAMPLE: Any = {
    "url": "https://example.com/hooks/dialwave",
    "description": "CRM sync",
    "event_types": ["call.ended", "lead.*", "campaign.completed"],
}


@router.post("", name="create", status_code=201, response_model=EndpointCreated, responses=WRITE_ERRORS)
async def create_endpoint(
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    engine: Engine,
    body: EndpointIn = Body(openapi_examples={"filtered": {"value": CREATE_EXAMPLE}}),
) -> JSONResponse:
    """Every event of the organization that passes `event_types` is sent here, signed per Standard
    Webhooks with `secret` (shown in this answer only; rotate it with `.../rotate-secret`)."""
    row, secret = await service.create_endpoint(db, guard, who.organization_id, now, **body.model_dump())
    engine.signal(who.organization_id, row["id"])  # the engine starts writing this organization's events
    return JSONResponse(serialize.endpoint(row, secret), status_code=201)


@router.get("", name="list", response_model=Page[EndpointOut], responses=READ_ERRORS)
async def list_endpoints(
    who: Reader,
    db: Db,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_endpoints(db, who.organization_id, limit, cursor)
    return JSONResponse(serialize.listing([serialize.endpoint(r) for r in rows], nxt))


@router.get("/{endpoint_id}", name="get", response_model=EndpointOut, responses=READ_ERRORS)
async def get_endpoint(endpoint_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.endpoint(await service.get_endpoint(db, who.organization_id, endpoint_id)))


@router.patch("/{endpoint_id}", name="update", response_model=EndpointOut, responses=WRITE_ERRORS)
async def update_endpoint(
    endpoint_id: str,
    who: Writer,
    db: Db,
    now: Now,
    guard: Guard,
    engine: Engine,
    body: EndpointPatch = Body(openapi_examples={"re-enable": {"value": {"enabled": True}}}),
) -> JSONResponse:
    """Partial update; `enabled: true` re-enables an endpoint disabled by a 410 answer."""
    patch = body.model_dump(exclude_unset=True)
    row = await service.update_endpoint(db, guard, who.organization_id, endpoint_id, patch, now)
    engine.signal(who.organization_id, None)
    return JSONResponse(serialize.endpoint(row))


@router.delete("/{endpoint_id}", name="delete", status_code=204, responses=WRITE_ERRORS)
async def delete_endpoint(endpoint_id: str, who: Writer, db: Db, engine: Engine) -> Response:
    await service.delete_endpoint(db, who.organization_id, endpoint_id)
    engine.signal(who.organization_id, None)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret", name="rotate_secret", response_model=EndpointCreated, responses=WRITE_ERRORS
)
async def rotate_secret(
    endpoint_id: str,
    who: Writer,
    db: Db,
    now: Now,
    keep_old_seconds: int = Query(86_400, ge=0, le=7 * 86_400, description="the old secret keeps signing this long"),
) -> JSONResponse:
    """A new secret (shown in this answer only). Until `keep_old_seconds` pass, every request carries a
    signature by the new and by the old secret, so the receiver can switch at its own pace."""
    row, secret = await service.rotate_secret(db, who.organization_id, endpoint_id, keep_old_seconds, now)
    return JSONResponse(serialize.endpoint(row, secret))


@router.get(
    "/{endpoint_id}/deliveries", name="list_deliveries", response_model=Page[DeliveryOut], responses=READ_ERRORS
)
async def list_deliveries(
    endpoint_id: str,
    who: Reader,
    db: Db,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    """Each event sent (or to be sent) here, oldest first, with its last 20 attempts."""
    found, nxt = await service.list_deliveries(db, who.organization_id, endpoint_id, status, limit, cursor)
    return JSONResponse(serialize.listing([serialize.delivery(r, attempts) for r, attempts in found], nxt))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/retry",
    name="retry_delivery",
    response_model=DeliveryOut,
    responses=WRITE_ERRORS,
)
async def retry_delivery(endpoint_id: str, delivery_id: str, who: Writer, db: Db, now: Now) -> JSONResponse:
    """Send the event again now (same `webhook-id`), with a fresh retry schedule."""
    row, attempts = await service.retry_delivery(db, who.organization_id, endpoint_id, delivery_id, now)
    return JSONResponse(serialize.delivery(row, attempts))
