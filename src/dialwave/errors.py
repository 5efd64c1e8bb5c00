"""Every error dialwave raises, in one module. api/errors.py is the one place that maps them to HTTP.

The tree (HTTP status and `type` of the error body in brackets):

    DialwaveError                 [400 bad_request]   the base: a message, the offending `fields`, a `code`
    ├── ValidationFailed          [422 validation_error]  bad input; `fields` names each offending field
    ├── UnsafeUrl                 [422 validation_error]  a URL the SSRF guard refuses (webhooks, hooks)
    ├── NotFound                  [404 not_found]     no such object in the caller's organization
    ├── Conflict                  [409 conflict]      conflicts with the object's state; `code` names the rule
    ├── Unauthorized              [401 unauthorized]  no valid API key or call token
    ├── Forbidden                 [403 forbidden]     the key lacks the scope; a carrier signature is wrong
    ├── PayloadTooLarge           [413 payload_too_large]
    ├── RateLimited               [429 rate_limited]
    ├── Unavailable               [503 unavailable]   the part of dialwave that would answer runs elsewhere
    │   ├── DatabaseNotReady      the database is not at the schema this code needs (not migrated)
    │   └── DatabaseUnavailable   the database does not answer (down, restarting, unreachable)
    ├── CarrierError              [502 provider_error]  a carrier refused or failed a request
    └── TransportError            [400 bad_request]   an outgoing HTTP request got no answer

    ValueError (not DialwaveError: pydantic validators and parsers raise them and turn them into 422s)
    ├── InvalidPhoneNumber        not a dialable number in E.164 (or in the given region)
    └── FramingError              a SIP-over-TCP peer sent a message that cannot be framed
"""

from __future__ import annotations

from typing import Any


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


class UnsafeUrl(DialwaveError):
    """A URL the SSRF guard refuses; `message` says why."""

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


class Unavailable(DialwaveError):
    """What was asked runs in another process (a carrier callback sent to a process without the engine)."""

    status_code = 503
    type = "unavailable"


class DatabaseNotReady(Unavailable):
    """The database is not at the schema this code needs: `dialwave migrate` has not run (since the upgrade)."""


class DatabaseUnavailable(Unavailable):
    """The database does not answer: retry shortly (the answer carries Retry-After)."""


class CarrierError(DialwaveError):
    """The carrier refused or failed a request (the attempt ends as provider_error). `retry_after`:
    seconds the carrier asked us to wait (a 429's or 503's Retry-After) before sending it more."""

    status_code = 502
    type = "provider_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(DialwaveError):
    """An outgoing HTTP request (webhook, pre-dial hook, context push) got no HTTP answer: refused,
    reset, timed out, TLS failure."""


class InvalidPhoneNumber(ValueError):
    """Not a dialable phone number."""


class FramingError(ValueError):
    """A SIP-over-TCP peer sent bytes that do not frame as a SIP message."""


def field_error(path: str, message: str) -> ValidationFailed:
    """A 422 naming one offending field."""
    return ValidationFailed(f"{path}: {message}", fields={path: message})
