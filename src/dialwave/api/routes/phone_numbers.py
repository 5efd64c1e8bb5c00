"""/v1/phone-numbers: caller ids and their carrier settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import Db, Engine, Now, Reader, Writer, partial
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import Page, PhoneNumberOut
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.domain.resources import PhoneNumberConfig
from dialwave.services import phone_numbers as service

router = APIRouter(prefix="/v1/phone-numbers", tags=["phone-numbers"], route_class=StrictJSONRoute)

PhoneNumberPatch = partial(PhoneNumberConfig, "PhoneNumberPatch")

NUMBER_EXAMPLE = {"number": "+14155550100", "provider": "simulated", "friendly_name": "Sales line"}
SIP_EXAMPLE = {
    "number": "+14155550101",
    "provider": "sip",
    "sip": {"trunk_uri": "sip:trunk.example.com:5060", "username": "acme", "password": "s3cret", "transport": "udp"},
}


@router.post("", name="create", status_code=201, response_model=PhoneNumberOut, responses=WRITE_ERRORS)
async def create_number(
    who: Writer,
    db: Db,
    now: Now,
    body: PhoneNumberConfig = Body(
        openapi_examples={"simulated": {"value": NUMBER_EXAMPLE}, "sip trunk": {"value": SIP_EXAMPLE}}
    ),
) -> JSONResponse:
    row = await service.create_number(db, who.organization_id, body, now)
    return JSONResponse(serialize.phone_number(row), status_code=201)


@router.get("", name="list", response_model=Page[PhoneNumberOut], responses=READ_ERRORS)
async def list_numbers(
    who: Reader,
    db: Db,
    number: str | None = Query(None, max_length=64, description="the number (any spelling) registered"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_numbers(db, who.organization_id, number, limit, cursor)
    return JSONResponse(serialize.listing([serialize.phone_number(r) for r in rows], nxt))


@router.get("/{number_id}", name="get", response_model=PhoneNumberOut, responses=READ_ERRORS)
async def get_number(number_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.phone_number(await service.get_number(db, who.organization_id, number_id)))


@router.patch("/{number_id}", name="update", response_model=PhoneNumberOut, responses=WRITE_ERRORS)
async def update_number(
    number_id: str,
    who: Writer,
    db: Db,
    now: Now,
    engine: Engine,
    patch: PhoneNumberPatch = Body(openapi_examples={"deactivate": {"value": {"active": False}}}),  # type: ignore[valid-type]
) -> JSONResponse:
    body: dict[str, Any] = patch.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    row = await service.update_number(db, who.organization_id, number_id, body, now)
    engine.signal(who.organization_id, None)  # caller ids in use are re-read (active, limits)
    return JSONResponse(serialize.phone_number(row))


@router.delete("/{number_id}", name="delete", status_code=204, responses=WRITE_ERRORS)
async def delete_number(number_id: str, who: Writer, db: Db, engine: Engine) -> Response:
    await service.delete_number(db, who.organization_id, number_id)
    engine.signal(who.organization_id, None)
    return Response(status_code=204)
