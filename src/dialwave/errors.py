"""One base exception; api/errors.py is the one place that maps it to HTTP."""

from __future__ import annotations


class DialwaveError(Exception):
    status_code = 400
    type = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code
        self.headers = headers or {}


class ValidationFailed(DialwaveError):
    status_code = 422
    type = "validation_error"


class NotFound(DialwaveError):
    status_code = 404
    type = "not_found"


class Conflict(DialwaveError):
    status_code = 409
    type = "conflict"


class Unauthorized(DialwaveError):
    status_code = 401
    type = "unauthorized"


class Forbidden(DialwaveError):
    status_code = 403
    type = "forbidden"


class PayloadTooLarge(DialwaveError):
    status_code = 413
    type = "payload_too_large"


class RateLimited(DialwaveError):
    status_code = 429
    type = "rate_limited"


def field_error(path: str, message: str) -> ValidationFailed:
    """A 422 naming one offending field."""
    return ValidationFailed(f"{path}: {message}", fields={path: message})
