"""/v1/calls: attempts, and the agent runtime's side of each (context and result)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import CallReader, CallWriter, Db, Engine, Now, Reader
from dialwave.api.result_effects import apply_result
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import CallContext, CallDetail, CallOut, CallResultOut, Page, ResultIn
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import calls as service

router = APIRouter(prefix="/v1/calls", tags=["calls"], route_class=StrictJSONRoute)

Outcome = Literal[
    "answered", "voicemail", "busy", "no_answer", "failed", "provider_error", "short_duration", "opted_out"
]


@router.get("", name="list", response_model=Page[CallOut], responses=READ_ERRORS)
async def list_calls(
    who: Reader,
    db: Db,
    campaign_id: str | None = Query(None, max_length=40),
    lead_id: str | None = Query(None, max_length=40),
    outcome: Outcome | None = None,
    phone_number: str | None = Query(None, max_length=64, description="calls to this number (any spelling)"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    filters = {"campaign_id": campaign_id, "lead_id": lead_id, "outcome": outcome, "phone_number": phone_number}
    rows, nxt = await service.list_calls(db, who.organization_id, filters, limit, cursor)
    return JSONResponse(serialize.listing([serialize.call(r) for r in rows], nxt))


@router.get("/{call_id}/context", name="context", response_model=CallContext, responses=READ_ERRORS)
async def call_context(call_id: str, org_id: CallReader, db: Db) -> JSONResponse:
    """What the agent runtime needs when the call is answered: rendered prompt and opening message, the
    lead's variables, `returning`, voice and language. Authorised by the call's own token (the carrier
    hands it to the runtime: SIP `X-Dialwave-Token`, Twilio stream parameter `token`) or an API key."""
    return JSONResponse(await service.context(db, org_id, call_id))


@router.post("/{call_id}/result", name="post_result", response_model=CallResultOut, responses=WRITE_ERRORS)
async def post_call_result(
    call_id: str,
    org_id: CallWriter,
    db: Db,
    now: Now,
    engine: Engine,
    body: ResultIn = Body(
        openapi_examples={"opt-out": {"value": {"disposition": "not interested", "opted_out": True}}}
    ),
) -> JSONResponse:
    """The runtime's result for the call (the call's token or an API key). Posting again updates it;
    an opt-out is applied once, before this answers: the number is on the DNC list and its pending
    attempts are skipped in every campaign."""
    posted = await service.post_result(db, org_id, call_id, body.model_dump(exclude_unset=True), now)
    await apply_result(
        db,
        engine,
        org_id,
        call_id,
        posted,
        now,
        opted_out=bool(body.opted_out),
        conversion=body.conversion,
        callback_at=body.callback_at,
    )
    return JSONResponse(serialize.call_result(posted.result))


@router.get("/{call_id}", name="get", response_model=CallDetail, responses=READ_ERRORS)
async def get_call(call_id: str, who: Reader, db: Db) -> JSONResponse:
    """The call, with the agent runtime's result when one was posted."""
    row, result = await service.get_call(db, who.organization_id, call_id)
    return JSONResponse({**serialize.call(row), "result": serialize.call_result(result) if result else None})
