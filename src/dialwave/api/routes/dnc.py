"""/v1/dnc: the organization's do-not-call list."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from dialwave.api import serialize
from dialwave.api.deps import AppSettings, Db, Engine, Now, Reader, Writer
from dialwave.api.routes import READ_ERRORS, WRITE_ERRORS
from dialwave.api.routes.leads import IMPORT_ERRORS, spool_body
from dialwave.api.schemas import DncAdd, DncAddResult, DncListImportResult, DncListOut, DncListPage, DncOut, Page
from dialwave.api.strict_json import StrictJSONRoute
from dialwave.services import dnc as service
from dialwave.services import dnc_lists

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


LIST_NAME = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@router.post(
    "/import",
    name="import_list",
    response_model=DncListImportResult,
    responses=IMPORT_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": "2125550123\n2125550124\n"}},
        }
    },
)
async def import_dnc_list(
    request: Request,
    background: BackgroundTasks,
    who: Writer,
    db: Db,
    now: Now,
    settings: AppSettings,
    engine: Engine,
    list_name: str = Query(
        alias="list", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["us-national"]
    ),
    default_region: str | None = Query(None, min_length=2, max_length=2, description="country of national numbers"),
    source: str | None = Query(None, max_length=256, examples=["US National DNC Registry"]),
    max_age_days: int | None = Query(None, ge=1, le=3650, description="campaigns naming the list warn past this age"),
) -> JSONResponse:
    """A named do-not-call list from a file (one number a line, or the first cell of each CSV row; E.164
    or national numbers of `default_region`). It replaces the list of that name whole, once the file is
    in: campaigns naming it (`dnc.lists`) never dial its numbers."""
    binary = await spool_body(request, settings.dnc_import_max_bytes)
    try:
        row, report = await dnc_lists.import_list(
            db,
            who.organization_id,
            list_name,
            binary,
            default_region,
            source,
            max_age_days,
            now,
            settings.import_max_errors_listed,
        )
    finally:
        binary.close()
    engine.signal(who.organization_id, None)  # claimed leads on the list are not dialed
    for list_id in report.replaced:
        background.add_task(dnc_lists.empty, db, list_id)  # after the answer is sent
    body = {
        "list": serialize.dnc_list(row, now),
        "lines": report.lines,
        "imported": report.imported,
        "rejected": report.rejected,
        "errors": report.errors,
    }
    return JSONResponse(body)


@router.get("/lists", name="lists", response_model=DncListPage, responses=READ_ERRORS)
async def list_dnc_lists(who: Reader, db: Db, now: Now) -> JSONResponse:
    rows = await dnc_lists.lists(db, who.organization_id)
    return JSONResponse({"data": [serialize.dnc_list(r, now) for r in rows]})


@router.get("/lists/{name}", name="get_list", response_model=DncListOut, responses=READ_ERRORS)
async def get_dnc_list(who: Reader, db: Db, now: Now, name: str = LIST_NAME) -> JSONResponse:
    return JSONResponse(serialize.dnc_list(await dnc_lists.get_list(db, who.organization_id, name), now))


@router.delete("/lists/{name}", name="delete_list", status_code=204, responses=WRITE_ERRORS)
async def delete_dnc_list(who: Writer, db: Db, engine: Engine, name: str = LIST_NAME) -> Response:
    await dnc_lists.delete_list(db, who.organization_id, name)
    engine.signal(who.organization_id, None)
    return Response(status_code=204)
