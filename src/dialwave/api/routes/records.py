"""The do-not-call list, calls (attempts) and health."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import CallReader, CallWriter, Db, Now, Reader, Signal, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.schemas import CallContext, CallDetail, CallOut, CallResultOut, DncAdd, DncAddResult, DncOut, Page
from dialwave.errors import NotFound
from dialwave.services import calls as calls_service
from dialwave.services import dnc as dnc_service
from dialwave.services.calls import ResultIn
from dialwave.services.dnc import normalize_one
from dialwave.store.repositories import leads as repo
from dialwave.store.repositories import results as results_repo

router = APIRouter(prefix="/v1", tags=["dnc & calls"])
health = APIRouter(tags=["health"])

Outcome = Literal[
    "answered", "voicemail", "busy", "no_answer", "failed", "provider_error", "short_duration", "opted_out"
]


@health.get("/healthz")
async def healthz(db: Db) -> dict[str, str]:
    async with db.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
    return {"status": "ok"}


@router.get("/dnc", response_model=Page[DncOut], responses=READ_ERRORS)
async def list_dnc(
    who: Reader,
    db: Db,
    phone_number: str | None = Query(None, max_length=64, description="look up one number"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    number = normalize_one(phone_number, "phone_number") if phone_number else None
    async with db.read() as conn:
        rows, nxt = await repo.dnc_list(conn, who.organization_id, number, limit, cursor)
    return JSONResponse(serialize.listing([serialize.dnc(r) for r in rows], nxt))


@router.post("/dnc", response_model=DncAddResult, responses=WRITE_ERRORS)
async def add_dnc(
    who: Writer,
    db: Db,
    now: Now,
    signal: Signal,
    body: DncAdd = Body(openapi_examples={"opt-out": {"value": {"numbers": ["+14155550123"], "reason": "opt-out"}}}),
) -> JSONResponse:
    """Numbers on the list are never dialed by any campaign of the organization (campaign dnc settings apply)."""
    added, already = await dnc_service.add(db, who.organization_id, body.numbers, body.reason, now)
    signal(who.organization_id, None)  # claimed leads of these numbers are not dialed
    return JSONResponse({"added": added, "already_listed": already})


@router.delete("/dnc", status_code=204, responses=WRITE_ERRORS)
async def remove_dnc(
    who: Writer, db: Db, phone_number: str = Query(max_length=64, examples=["+14155550123"])
) -> Response:
    await dnc_service.remove(db, who.organization_id, phone_number)
    return Response(status_code=204)


@router.get("/calls", response_model=Page[CallOut], responses=READ_ERRORS)
async def list_calls(
    who: Reader,
    db: Db,
    campaign_id: str | None = Query(None, max_length=40),
    lead_id: str | None = Query(None, max_length=40),
    outcome: Outcome | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> JSONResponse:
    async with db.read() as conn:
        rows, nxt = await repo.list_calls(conn, who.organization_id, campaign_id, lead_id, outcome, limit, cursor)
    return JSONResponse(serialize.listing([serialize.call(r) for r in rows], nxt))


@router.get("/calls/{call_id}/context", response_model=CallContext, responses=READ_ERRORS)
async def call_context(call_id: str, org_id: CallReader, db: Db) -> JSONResponse:
    """What the agent runtime needs when the call is answered: rendered prompt and opening message, the
    lead's variables, `returning`, voice and language. Authorised by the call's own token (the carrier
    hands it to the runtime: SIP `X-Dialwave-Token`, Twilio stream parameter `token`) or an API key."""
    return JSONResponse(await calls_service.context(db, org_id, call_id))


@router.post("/calls/{call_id}/result", response_model=CallResultOut, responses=WRITE_ERRORS)
async def post_call_result(
    call_id: str,
    request: Request,
    org_id: CallWriter,
    db: Db,
    now: Now,
    signal: Signal,
    body: ResultIn = Body(
        openapi_examples={"opt-out": {"value": {"disposition": "not interested", "opted_out": True}}}
    ),
) -> JSONResponse:
    """The runtime's result for the call (the call's token or an API key). Posting again updates it;
    an opt-out is applied once, before this answers: the number is on the DNC list and its pending
    attempts are skipped in every campaign."""
    posted = await calls_service.post_result(db, org_id, call_id, body, now)
    if body.opted_out:
        signal(org_id, None)  # claimed attempts of this number are not dialed
    elif posted.redecided is not None:
        signal(org_id, posted.redecided)  # the call had ended: its lead now waits for the new attempt
    elif posted.call_live and (body.conversion is not None or body.callback_at is not None):
        hook = getattr(request.app.state, "engine_results", None)
        if hook is not None:
            hook(call_id, body.conversion, body.callback_at)  # the call is up: its end decides with these
    return JSONResponse(posted.result)


@router.get("/calls/{call_id}", response_model=CallDetail, responses=READ_ERRORS)
async def get_call(call_id: str, who: Reader, db: Db) -> JSONResponse:
    """The call, with the agent runtime's result when one was posted."""
    async with db.read() as conn:
        row = await repo.get_call(conn, who.organization_id, call_id)
        result = await results_repo.get_result(conn, call_id) if row is not None else None
    if row is None:
        raise NotFound(f"no call '{call_id}'")
    return JSONResponse({**serialize.call(row), "result": calls_service.result_out(result) if result else None})
