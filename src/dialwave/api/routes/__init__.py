"""Thin routes: parse, call a service, serialise."""

from __future__ import annotations

from typing import Any

from dialwave.api.schemas import ErrorBody

_ERR = {"model": ErrorBody}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**_ERR, "description": "missing or invalid API key"},
    403: {**_ERR, "description": "the key lacks the scope"},
    404: {**_ERR, "description": "no such object in your organization"},
    422: {**_ERR, "description": "invalid input; `fields` names each offending field"},
    429: {**_ERR, "description": "over the key's request rate (`RATE_LIMITED`); retry after `Retry-After` seconds"},
    503: {**_ERR, "description": "the database is not answering (`DATABASE_UNAVAILABLE`); retry after `Retry-After`"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    409: {**_ERR, "description": "conflicts with the object's state; `code` says which rule"},
    413: {**_ERR, "description": "the body is over DIALWAVE_JSON_MAX_BYTES (10 MB)"},
}
