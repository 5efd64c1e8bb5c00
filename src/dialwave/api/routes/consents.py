"""/v1/consents: consent records (create, list, import, revoke)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import AppSettings, Db, Engine, Now, Reader, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.routes.leads import IMPORT_ERRORS, spool_body
from dialwave.api.schemas import ConsentImportResult, ConsentOut, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.domain.consent import ConsentIn
from dialwave.errors import ValidationFailed
from dialwave.services import consents as service

router = APIRouter(prefix="/v1/consents", tags=["consents"], route_class=StrictJSONRoute)
EXAMPLE = {
    "phone_number": "+14155550123",
    "scope": "ai_voice",
    "source": "web form /demo-request",
    "captured_at": "2026-11-20T14:03:00Z",
    "evidence": "https://crm.example.com/consents/8812",
    "expires_at": "2027-11-20T14:03:00Z",
}


@router.post("", name="create", status_code=201, response_model=ConsentOut, responses=WRITE_ERRORS)
async def create_consent(
    who: Writer,
    db: Db,
    now: Now,
    engine: Engine,
    body: ConsentIn = Body(openapi_examples={"AI voice": {"value": EXAMPLE}}),
) -> JSONResponse:
    """Record a number's consent. Campaigns with `compliance.require_consent` dial only numbers holding a
    valid one of the scope they need."""
    row = await service.create(db, who.organization_id, body, now)
    engine.signal(who.organization_id, None)
    return JSONResponse(serialize.consent(row, now), status_code=201)


@router.get("", name="list", response_model=Page[ConsentOut], responses=READ_ERRORS)
async def list_consents(
    who: Reader,
    db: Db,
    now: Now,
    phone_number: str | None = Query(None, max_length=64, description="one number's consents"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_consents(db, who.organization_id, phone_number, limit, cursor)
    return JSONResponse(serialize.listing([serialize.consent(r, now) for r in rows], nxt))


@router.post(
    "/import",
    name="import",
    response_model=ConsentImportResult,
    responses=IMPORT_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "phone_number,scope,source,captured_at,evidence,expires_at\n"
                    "+14155550123,ai_voice,web form,2026-11-20T14:03:00Z,https://crm.example.com/c/1,\n",
                }
            },
        }
    },
)
async def import_consents(request: Request, who: Writer, db: Db, now: Now, settings: AppSettings) -> JSONResponse:
    """Consents from a CSV (`phone_number, scope, source, captured_at[, evidence, expires_at]`): valid
    rows are stored, the others reported (`errors`, rows counted from 1)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("text/csv", "application/csv", "text/plain", ""):
        raise ValidationFailed("Content-Type: send text/csv", fields={"Content-Type": "unsupported"})
    binary = await spool_body(request, settings.import_max_bytes)
    try:
        rows, errors = await asyncio.to_thread(
            service.parse_csv, binary, who.organization_id, now, settings.import_max_rows
        )
    finally:
        binary.close()
    await service.import_rows(db, rows)
    shown = errors[: settings.import_max_errors_listed]
    return JSONResponse({"accepted": len(rows), "rejected": len(errors), "errors": shown})


@router.get("/{consent_id}", name="get", response_model=ConsentOut, responses=READ_ERRORS)
async def get_consent(consent_id: str, who: Reader, db: Db, now: Now) -> JSONResponse:
    return JSONResponse(serialize.consent(await service.get(db, who.organization_id, consent_id), now))


@router.post("/{consent_id}/revoke", name="revoke", response_model=ConsentOut, responses=WRITE_ERRORS)
async def revoke_consent(consent_id: str, who: Writer, db: Db, now: Now, engine: Engine) -> JSONResponse:
    """Revoke it now: once this answers, no campaign that needs it dials the number on its strength."""
    row = await service.revoke(db, who.organization_id, consent_id, now)
    engine.signal(who.organization_id, None)  # claimed leads are checked again before they are dialed
    return JSONResponse(serialize.consent(row, now))
