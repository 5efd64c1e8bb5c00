"""A campaign's leads (filters by status, last outcome and number), the CSV upload with its row errors
(and a CSV of them), and a lead's history: each attempt with the runtime's result and summary."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
from typing import Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from dialwave.api import serialize
from dialwave.api.routes.leads import LeadOutcome, LeadStatus
from dialwave.errors import DialwaveError, PayloadTooLarge, ValidationFailed
from dialwave.services import calls as call_service
from dialwave.services import campaigns as campaign_service
from dialwave.services import csv_rows, lead_import
from dialwave.services import leads as lead_service
from dialwave.web.core import Signed, Uploads, WebRoute, ctx, render

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

PAGE = 50
LEAD_STATUSES = get_args(LeadStatus)
OUTCOMES = get_args(LeadOutcome)
ROW_ERROR = re.compile(r"^Row (\d+): (.*)$", re.DOTALL)


def errors_csv(errors: list[str]) -> str:
    """The import's row errors as a CSV file (`row,error`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "error"])
    for line in errors:
        found = ROW_ERROR.match(line)
        writer.writerow([found.group(1), found.group(2)] if found else ["", line])
    return out.getvalue()


def data_uri(text: str) -> str:
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii")


async def _leads_page(
    request: Request,
    session: Any,
    campaign_id: str,
    filters: dict[str, str | None],
    cursor: str | None,
    *,
    status: int = 200,
    report: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    context = ctx(request)
    org_id = session.principal.organization_id
    campaign = await campaign_service.get_campaign(context.db, org_id, campaign_id)
    filter_error = None
    try:
        rows, nxt = await lead_service.list_leads(
            context.db,
            org_id,
            campaign_id,
            PAGE,
            cursor,
            status=filters["status"],
            phone_number=filters["phone_number"],
            outcome=filters["outcome"],
        )
    except ValidationFailed as exc:
        rows, nxt, filter_error = [], None, exc.message
    return render(
        request,
        "leads.html",
        status=status,
        session=session,
        campaign={"id": campaign["id"], "name": campaign["name"], "status": campaign["status"]},
        leads=[serialize.lead(r) for r in rows],
        next_cursor=nxt,
        filters={k: v or "" for k, v in filters.items()},
        statuses=LEAD_STATUSES,
        outcomes=OUTCOMES,
        filter_error=filter_error,
        report=report,
        error=error,
    )


@router.get("/campaigns/{campaign_id}/leads")
async def leads_page(
    request: Request,
    campaign_id: str,
    session: Signed,
    status: str | None = Query(None, max_length=20),
    outcome: str | None = Query(None, max_length=20),
    phone_number: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    filters = {
        "status": status if status in LEAD_STATUSES else None,
        "outcome": outcome if outcome in OUTCOMES else None,
        "phone_number": (phone_number or "").strip() or None,
    }
    return await _leads_page(request, session, campaign_id, filters, cursor)


@router.post("/campaigns/{campaign_id}/leads/import")
async def import_leads(request: Request, campaign_id: str, posted: Uploads) -> Response:
    """The CSV file of the form (field `file`): the import's report, with each row's error."""
    context = ctx(request)
    settings = context.settings
    org_id = posted.session.principal.organization_id
    upload = posted.form.get("file")
    no_filters: dict[str, str | None] = {"status": None, "outcome": None, "phone_number": None}
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _leads_page(
            request, posted.session, campaign_id, no_filters, None, status=422, error="Choose a CSV file to upload."
        )
    region = posted.text("default_region").upper() or None
    try:
        lines = await asyncio.to_thread(csv_rows.count_lines, upload.file)
        if lines > settings.import_max_rows + 1:
            raise PayloadTooLarge(f"the file has more than {settings.import_max_rows} rows; split it")
        report = await lead_import.import_csv(
            context.db,
            org_id,
            campaign_id,
            upload.file,
            region,
            context.clock.now(),
            batch_rows=settings.import_batch_rows,
            max_rows=settings.import_max_rows,
            max_errors=settings.import_max_errors_listed,
        )
    except DialwaveError as exc:
        if exc.status_code == 404:
            raise
        return await _leads_page(
            request, posted.session, campaign_id, no_filters, None, status=exc.status_code, error=exc.message
        )
    finally:
        await upload.close()
    context.engine.signal(org_id, campaign_id)
    found = report.as_dict()
    rows = []
    for line in found["errors"]:
        match = ROW_ERROR.match(line)
        rows.append({"row": match.group(1), "error": match.group(2)} if match else {"row": "", "error": line})
    found["error_rows"] = rows
    found["filename"] = upload.filename
    found["errors_csv"] = data_uri(errors_csv(found["errors"])) if rows else None
    return await _leads_page(request, posted.session, campaign_id, no_filters, None, report=found)


@router.get("/campaigns/{campaign_id}/leads/{lead_id}")
async def lead_page(request: Request, campaign_id: str, lead_id: str, session: Signed) -> Response:
    """The lead, and each attempt with its outcome and the runtime's result (summary, disposition)."""
    context = ctx(request)
    org_id = session.principal.organization_id
    campaign = await campaign_service.get_campaign(context.db, org_id, campaign_id)
    lead = await lead_service.get_lead(context.db, org_id, campaign_id, lead_id)
    calls, _ = await call_service.list_calls(context.db, org_id, {"lead_id": lead_id}, 100, None)
    attempts = []
    for row in calls:
        call, result = await call_service.get_call(context.db, org_id, row["id"])
        attempts.append({**serialize.call(call), "result": serialize.call_result(result) if result else None})
    return render(
        request,
        "lead.html",
        session=session,
        campaign={"id": campaign["id"], "name": campaign["name"]},
        lead=serialize.lead(lead),
        attempts=attempts,
    )
