"""/v1/campaigns/{campaign_id}/leads: JSON batches, CSV import, list, remove."""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from dialwave.api import serialize
from dialwave.api.deps import AppSettings, Db, Engine, Now, Reader, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import ErrorBody, ImportResult, LeadOut, LeadPatch, LeadsBatch, Page, lead_rows
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.errors import PayloadTooLarge, ValidationFailed
from dialwave.services import csv_rows, lead_import
from dialwave.services import leads as service

router = APIRouter(prefix="/v1/campaigns/{campaign_id}/leads", tags=["leads"], route_class=StrictJSONRoute)

LeadOutcome = Literal[
    "answered",
    "voicemail",
    "busy",
    "no_answer",
    "failed",
    "provider_error",
    "internal_error",
    "short_duration",
    "no_conversion",
    "opted_out",
]
LeadStatus = Literal["queued", "dialing", "in_call", "retry_pending", "completed", "failed", "skipped", "cancelled"]
IMPORT_ERRORS = {
    **WRITE_ERRORS,
    400: {"model": ErrorBody, "description": "a malformed multipart body"},
    413: {"model": ErrorBody, "description": "over the size or row limit"},
    415: {"model": ErrorBody, "description": "send text/csv or multipart/form-data"},
}
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel")


@router.post("", name="add", response_model=ImportResult, responses=WRITE_ERRORS)
async def add_leads(
    campaign_id: str,
    who: Writer,
    db: Db,
    now: Now,
    settings: AppSettings,
    engine: Engine,
    body: LeadsBatch = Body(
        openapi_examples={
            "recipients with metadata": {
                "value": {
                    "leads": [
                        {"phone_number": "+14155550123", "variables": {"name": "Ada", "company": "Acme"}},
                        {
                            "phone_number": "(415) 555-0124",
                            "variables": {"name": "Lin", "company": "Globex"},
                            "timezone": "America/Los_Angeles",
                            "agent_overrides": {"opening_message": "Hi {{name}}, welcome back!"},
                        },
                    ],
                    "default_region": "US",
                }
            }
        }
    ),
) -> JSONResponse:
    """Add up to 10,000 leads. Invalid rows are reported (`errors`, rows counted from 1); valid ones are stored."""
    leads = await asyncio.to_thread(lead_rows, body.leads)
    report = await lead_import.add_leads(
        db, who.organization_id, campaign_id, leads, body.default_region, now, settings.import_max_errors_listed
    )
    engine.signal(who.organization_id, campaign_id)
    return JSONResponse(report.as_dict())


async def spool_body(request: Request, limit: int) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed by the caller
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(f"the file is over {limit} bytes; split it")
        await asyncio.to_thread(spool.write, chunk)
    spool.seek(0)
    return spool


@router.post(
    "/import",
    name="import",
    response_model=ImportResult,
    responses=IMPORT_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "phone_number,name,company\n+14155550123,Ada,Acme\n4155550124,Lin,Globex\n",
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "default_region": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def import_leads(
    campaign_id: str,
    request: Request,
    who: Writer,
    db: Db,
    now: Now,
    settings: AppSettings,
    engine: Engine,
    default_region: str | None = Query(None, min_length=2, max_length=2, description="region for numbers without +"),
) -> JSONResponse:
    """CSV import, streamed: column `phone_number` (or `phone`, `number`), optional `timezone`, every other
    column a variable. Comma, semicolon, tab or pipe delimited; a UTF-8 BOM is fine. Numbers without `+` are
    read in `default_region`, else in the country of the campaign's first caller id."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.import_max_bytes + (1 << 16):
        raise PayloadTooLarge(f"the file is over {settings.import_max_bytes} bytes; split it")
    binary: IO[bytes]
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed("file: attach the CSV as a form field named 'file'", fields={"file": "required"})
        if upload.size is not None and upload.size > settings.import_max_bytes:
            raise PayloadTooLarge(f"the file is over {settings.import_max_bytes} bytes; split it")
        region_field = form.get("default_region")
        if isinstance(region_field, str) and region_field and default_region is None:
            default_region = region_field
        binary = upload.file
    elif content_type in CSV_TYPES or content_type == "":
        binary = await spool_body(request, settings.import_max_bytes)
    else:
        raise ValidationFailed(
            "Content-Type: send text/csv or multipart/form-data", fields={"Content-Type": "unsupported"}
        )
    try:
        lines = await asyncio.to_thread(csv_rows.count_lines, binary)
        if lines > settings.import_max_rows + 1:
            raise PayloadTooLarge(f"the file has more than {settings.import_max_rows} rows; split it")
        report = await lead_import.import_csv(
            db,
            who.organization_id,
            campaign_id,
            binary,
            default_region,
            now,
            batch_rows=settings.import_batch_rows,
            max_rows=settings.import_max_rows,
            max_errors=settings.import_max_errors_listed,
        )
    finally:
        binary.close()
    engine.signal(who.organization_id, campaign_id)
    return JSONResponse(report.as_dict())


@router.get("", name="list", response_model=Page[LeadOut], responses=READ_ERRORS)
async def list_leads(
    campaign_id: str,
    who: Reader,
    db: Db,
    status: LeadStatus | None = None,
    phone_number: str | None = Query(None, max_length=64, description="the lead of this number (any spelling)"),
    outcome: LeadOutcome | None = Query(None, description="the outcome of the lead's last attempt"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    rows, nxt = await service.list_leads(
        db, who.organization_id, campaign_id, limit, cursor, status=status, phone_number=phone_number, outcome=outcome
    )
    return JSONResponse(serialize.listing([serialize.lead(r) for r in rows], nxt))


@router.get("/{lead_id}", name="get", response_model=LeadOut, responses=READ_ERRORS)
async def get_lead(campaign_id: str, lead_id: str, who: Reader, db: Db) -> JSONResponse:
    return JSONResponse(serialize.lead(await service.get_lead(db, who.organization_id, campaign_id, lead_id)))


@router.patch("/{lead_id}", name="update", response_model=LeadOut, responses=WRITE_ERRORS)
async def update_lead(
    campaign_id: str,
    lead_id: str,
    who: Writer,
    db: Db,
    now: Now,
    engine: Engine,
    patch: LeadPatch = Body(openapi_examples={"moved": {"value": {"timezone": "America/Los_Angeles"}}}),
) -> JSONResponse:
    """Change a waiting (queued or retry-pending) lead: its variables, time zone, agent overrides. A new
    time zone re-plans it: it may come due earlier, never before its retry interval."""
    body: dict[str, Any] = patch.model_dump(mode="json", exclude_unset=True)
    row = await service.update_lead(db, who.organization_id, campaign_id, lead_id, body, now)
    engine.signal(who.organization_id, campaign_id)
    return JSONResponse(serialize.lead(row))


@router.delete("/{lead_id}", name="delete", status_code=204, responses=WRITE_ERRORS)
async def delete_lead(campaign_id: str, lead_id: str, who: Writer, db: Db, engine: Engine) -> Response:
    await service.delete_lead(db, who.organization_id, campaign_id, lead_id)
    engine.signal(who.organization_id, campaign_id)
    return Response(status_code=204)
