"""/v1/dnc: the organization's do-not-call list."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import Db, Engine, Now, Reader, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import DncAdd, DncAddResult, DncOut, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import dnc as service

router = APIRouter(prefix="/v1/dnc", tags=["dnc"], route_class=StrictJSONRoute)


@router.get("", name="list", response_model=Page[DncOut], responses=READ_ERRORS)
async def list_dnc(
    who: Reader,
    db: Db,
    phone_number: str | None = Query(None, max_length=64, description="look up one number"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_numbers(db, who.organization_id, phone_number, limit, cursor)
    return JSONResponse(serialize.listing([serialize.dnc(r) for r in rows], nxt))


@router.post("", name="add", response_model=DncAddResult, responses=WRITE_ERRORS)
async def add_dnc(
    who: Writer,
    db: Db,
    now: Now,
    engine: Engine,
    body: DncAdd = Body(openapi_examples={"opt-out": {"value": {"numbers": ["+14155550123"], "reason": "opt-out"}}}),
) -> JSONResponse:
    """Numbers on the list are never dialed by any campaign of the organization (campaign dnc settings apply)."""
    added, already = await service.add(db, who.organization_id, body.numbers, body.reason, now)
    engine.signal(who.organization_id, None)  # claimed leads of these numbers are not dialed
    return JSONResponse({"added": added, "already_listed": already})


@router.delete("", name="remove", status_code=204, responses=WRITE_ERRORS)
async def remove_dnc(
    who: Writer, db: Db, phone_number: str = Query(max_length=64, examples=["+14155550123"])
) -> Response:
    await service.remove(db, who.organization_id, phone_number)
    return Response(status_code=204)
