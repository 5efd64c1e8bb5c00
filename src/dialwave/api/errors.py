"""The one place that maps errors to HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialwave.errors import DialwaveError
from dialwave.logging import get_logger
from dialwave.services.validation import error_message, field_path
from dialwave.store.db import unreachable

log = get_logger("dialwave.api")

RETRY = {"Retry-After": "5"}
_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_response(
    request: Request,
    status: int,
    type_: str,
    message: str,
    fields: dict[str, str] | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": {
            "type": type_,
            "message": message,
            "fields": fields or {},
            "code": code,
            "request_id": request_id(request),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DialwaveError)
    async def _ours(request: Request, exc: DialwaveError) -> JSONResponse:
        return error_response(request, exc.status_code, exc.type, exc.message, exc.fields, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields: dict[str, str] = {}
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:] if loc[0] == "body" or len(loc) > 1 else loc
            fields.setdefault(field_path(loc), error_message(dict(err)))
        first = next(iter(fields.items()), ("body", "invalid"))
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        return error_response(request, 422, "validation_error", f"{first[0]}: {first[1]}{more}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_TYPES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else type_
        return error_response(request, exc.status_code, type_, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error", path=request.url.path, request_id=request_id(request))
        message = "the request conflicts with stored data (a concurrent change?); read the object again and retry"
        return error_response(request, 409, "conflict", message, code="CONFLICT")

    @app.exception_handler(OSError)
    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not unreachable(exc):
            return await _unexpected(request, exc)
        log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
        message = "the database does not answer; retry in a few seconds"
        return error_response(request, 503, "unavailable", message, code="DATABASE_UNAVAILABLE", headers=RETRY)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path, request_id=request_id(request))
        return error_response(request, 500, "internal_error", "internal error; quote the request_id when reporting")
