"""The organization's do-not-call list: look up, add, remove, import a file of numbers."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from dialwave.api import serialize
from dialwave.errors import DialwaveError, ValidationFailed
from dialwave.services import dnc as dnc_service
from dialwave.services.validation import phone_field
from dialwave.web.core import Signed, Uploads, WebRoute, Writes, ctx, notice, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False, tags=["dashboard"])

PAGE = 100
IMPORT_MAX_NUMBERS = 100_000
NOTICES = {"removed": "Number removed from the do-not-call list."}


def numbers_in(text: str) -> list[str]:
    """Numbers of a text box: one per line, or separated by commas, semicolons or spaces between numbers."""
    return [part.strip() for part in text.replace(";", "\n").replace(",", "\n").splitlines() if part.strip()]


def numbers_of_file(data: bytes) -> list[tuple[int, str]]:
    """(line, number) of a CSV or text file: the first column of each row, a header row skipped."""
    text = data.decode("utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t", "|"), key=first.count) if any(d in first for d in ",;\t|") else ","
    out = []
    for line, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        cell = row[0].strip() if row else ""
        if not cell or (line == 1 and not any(ch.isdigit() for ch in cell)):
            continue
        out.append((line, cell))
    return out


async def _page(
    request: Request,
    session: Any,
    number: str | None,
    cursor: str | None,
    *,
    status: int = 200,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    notice_text: str | None = None,
) -> Response:
    lookup_error = None
    try:
        rows, nxt = await dnc_service.list_numbers(
            ctx(request).db, session.principal.organization_id, number, PAGE, cursor
        )
    except ValidationFailed as exc:
        rows, nxt, lookup_error = [], None, exc.message
    return render(
        request,
        "dnc.html",
        status=status,
        session=session,
        numbers=[serialize.dnc(r) for r in rows],
        next_cursor=nxt,
        lookup=number or "",
        lookup_error=lookup_error,
        error=error,
        result=result,
        notice=notice_text,
    )


@router.get("/dnc")
async def dnc_page(
    request: Request,
    session: Signed,
    phone_number: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=200),
    notice: str | None = Query(None, max_length=20),
) -> Response:
    return await _page(request, session, (phone_number or "").strip() or None, cursor, notice_text=_notice(notice))


def _notice(code: str | None) -> str | None:
    return notice(code, NOTICES)


async def _add(request: Request, posted: Any, numbered: list[tuple[int, str]], reason: str | None) -> Response:
    """Add the valid numbers; each invalid one is reported by its line."""
    context = ctx(request)
    org_id = posted.session.principal.organization_id
    valid, errors = [], []
    for line, raw in numbered:
        try:
            valid.append(phone_field(raw, "phone_number"))
        except ValidationFailed:
            errors.append({"row": line, "error": f"invalid phone number '{raw[:40]}' (E.164 expected)"})
    added = already = 0
    if valid:
        added, already = await dnc_service.add(context.db, org_id, valid, reason, context.clock.now())
        context.engine.signal(org_id, None)  # claimed leads of these numbers are not dialed
    result = {"added": added, "already_listed": already, "errors": errors}
    return await _page(request, posted.session, None, None, status=422 if errors and not valid else 200, result=result)


@router.post("/dnc/add")
async def dnc_add(request: Request, posted: Writes) -> Response:
    numbers = numbers_in(posted.text("numbers"))
    if not numbers:
        return await _page(request, posted.session, None, None, status=422, error="Enter at least one number.")
    return await _add(request, posted, list(enumerate(numbers, start=1)), posted.text("reason") or None)


@router.post("/dnc/import")
async def dnc_import(request: Request, posted: Uploads) -> Response:
    upload = posted.form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(request, posted.session, None, None, status=422, error="Choose a file of numbers.")
    try:
        numbered = await asyncio.to_thread(lambda: numbers_of_file(upload.file.read()))
    finally:
        await upload.close()
    if len(numbered) > IMPORT_MAX_NUMBERS:
        return await _page(
            request, posted.session, None, None, status=413, error=f"At most {IMPORT_MAX_NUMBERS} numbers a file."
        )
    if not numbered:
        return await _page(request, posted.session, None, None, status=422, error="The file has no numbers.")
    return await _add(request, posted, numbered, posted.text("reason") or None)


@router.post("/dnc/remove")
async def dnc_remove(request: Request, posted: Writes) -> Response:
    try:
        await dnc_service.remove(ctx(request).db, posted.session.principal.organization_id, posted.text("phone_number"))
    except DialwaveError as exc:
        return await _page(request, posted.session, None, None, status=exc.status_code, error=exc.message)
    return redirect("/dnc?notice=removed")
