"""Pure ASGI middleware: request ids, the database being away, body limits and `Idempotency-Key` on every POST."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialwave.api.deps import context_of
from dialwave.domain import call_tokens
from dialwave.errors import DialwaveError
from dialwave.ids import new_id
from dialwave.logging import get_logger, mask_phone
from dialwave.services import idempotency
from dialwave.services.auth import authenticate, key_from_headers
from dialwave.store.db import unreachable

access_log = get_logger("dialwave.access")


class RequestIdMiddleware:
    """Gives each request an id (X-Request-Id) and writes one access-log line, phone numbers masked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = Headers(scope=scope).get("x-request-id") or new_id("req")
        rid = rid[:64]
        scope.setdefault("state", {})["request_id"] = rid

        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1", "replace")))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = unquote(scope["path"] + (f"?{query}" if query else ""))
            access_log.info(
                "request",
                method=scope["method"],
                path=mask_phone(target),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=rid,
            )


class DatabaseAwayMiddleware:
    """The database being away (restarting, failing over, unreachable) is a 503 JSON error
    (`DATABASE_UNAVAILABLE`, Retry-After) wherever it is met: the routes' errors are mapped in
    api/errors.py, and this catches what the middleware below it meets (the API key's check, the rate
    limit, Idempotency-Key), which the route's handlers never see."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as exc:
            if started or not unreachable(exc):
                raise
            access_log.warning("database unavailable", path=mask_phone(scope["path"]), error=type(exc).__name__)
            rid = scope.get("state", {}).get("request_id", "")
            message = "the database does not answer; retry in a few seconds"
            body = _err(None, message, rid, "unavailable", "DATABASE_UNAVAILABLE")
            await _send_json(send, 503, body, [(b"retry-after", b"5")])


async def _send_json(send: Send, status: int, body: dict[str, Any] | str, extra: list[tuple[bytes, bytes]]) -> None:
    payload = body if isinstance(body, str) else json.dumps(body)
    data = payload.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class BodyGuardMiddleware:
    """A request body is read only from an authenticated caller (the API key is checked first: an
    unauthenticated 500 MB POST is a 401 at once, nothing read), and never beyond its limit: a JSON or
    form body `json_max_bytes` (a CSV import `import_max_bytes`, which its route streams to disk). A
    declared Content-Length over the limit is a 413 before reading; a body that grows past it while it
    streams stops with a 413. Carrier callbacks (signed by the carrier) and call tokens (checked by
    their routes, from the URL and a header) pass to their routes."""

    METHODS = ("POST", "PUT", "PATCH")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.METHODS or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        context = context_of(scope["app"])
        settings = context.settings
        rid = scope.get("state", {}).get("request_id", "")
        path = scope["path"]
        limit = settings.json_max_bytes
        if path == "/v1/dnc/import":
            limit = settings.dnc_import_max_bytes
        elif path.endswith("/import"):
            limit = settings.import_max_bytes + 65_536
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, _too_large(limit, rid), [])
            return
        if not scope["path"].startswith("/v1/carriers/"):
            key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
            if not call_tokens.is_call_token(key):
                try:
                    who = await authenticate(context.db, key)
                    await context.limiter.admit(context.db, who)
                except DialwaveError as exc:
                    field = "Authorization" if exc.status_code == 401 else None
                    body = _err(field, exc.message, rid, exc.type, exc.code)
                    extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
                    await _send_json(send, exc.status_code, body, extra)
                    return
                scope.setdefault("state", {})["principal"] = who
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, f"the body is over {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int, rid: str) -> dict[str, Any]:
    message = f"the body is over {limit} bytes; send less (a CSV import takes more: POST .../leads/import)"
    return {"error": {"type": "payload_too_large", "message": message, "fields": {}, "code": None, "request_id": rid}}


class IdempotencyMiddleware:
    """`Idempotency-Key` on every POST. The key is reserved before the route runs: the same key while
    the first request still runs is a 409 (`IDEMPOTENCY_KEY_IN_USE`, retry after a second); once it has
    answered, the same key and request replay its answer (status, body, content type, ETag); the same
    key with another request is a 422. Reservations are rows of the database, so this holds across API
    processes. Keys live per organization for `idempotency_ttl_hours`. The body is hashed as it
    streams, so a large CSV import is not held in memory for this."""

    REPLAYED = (b"content-type", b"etag", b"location")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        context = context_of(scope["app"])
        rid = scope.get("state", {}).get("request_id", "")
        if not key.strip() or len(key) > 255:
            await _send_json(send, 422, _err("Idempotency-Key", "must be 1-255 characters", rid), [])
            return
        who = scope.get("state", {}).get("principal")  # authenticated by the body guard already
        if who is None:
            try:
                who = await authenticate(
                    context.db, key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
                )
            except DialwaveError:
                await self.app(scope, receive, send)  # the route answers 401
                return
        org, now = who.organization_id, context.clock.now()
        ttl = timedelta(hours=context.settings.idempotency_ttl_hours)
        hasher = hashlib.sha256(
            f"{scope['method']} {scope['path']}?{scope.get('query_string', b'').decode()}\n".encode()
        )
        body_done = False

        async def hashing_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request":
                hasher.update(message.get("body", b""))
                body_done = not message.get("more_body", False)
            return message

        async def drain() -> bool:
            """Read the rest of the body (hashing it); False if the client went away first."""
            while not body_done:
                if (await hashing_receive())["type"] != "http.request":
                    return False
            return True

        held = await idempotency.reserve(context.db, org, key, now, ttl)
        if held is not None:
            await drain()
            if held["status_code"] is None:
                msg = "a request with this key is still running; retry when it has answered"
                body = _err("Idempotency-Key", msg, rid, "conflict", "IDEMPOTENCY_KEY_IN_USE")
                await _send_json(send, 409, body, [(b"retry-after", b"1")])
            elif hasher.hexdigest() != held["request_hash"]:
                msg = "was used with a different request; use a new key for a new request"
                await _send_json(send, 422, _err("Idempotency-Key", msg, rid), [])
            else:
                await _replay(send, held)
            return

        status = 0
        kept: list[list[str]] = []
        chunks: list[bytes] = []

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept.extend(
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() in self.REPLAYED
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        answered = False
        try:
            await self.app(scope, hashing_receive, capturing_send)
            if await drain() and status and status < 500 and status not in (401, 429):
                answer = b"".join(chunks).decode("utf-8", "replace")
                await idempotency.complete(context.db, org, key, hasher.hexdigest(), status, kept, answer, now, ttl)
                answered = True
        finally:
            if not answered:  # an error, a 5xx, a client gone before its body ended: the key is free again
                await idempotency.release(context.db, org, key)


async def _replay(send: Send, held: Any) -> None:
    data = (held["response_body"] or "").encode()
    headers = [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in held["response_headers"] or []]
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", b"application/json"))
    headers += [(b"content-length", str(len(data)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": held["status_code"], "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _err(
    field: str | None, message: str, rid: str, type_: str = "validation_error", code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "type": type_,
            "message": f"{field}: {message}" if field else message,
            "fields": {field: message} if field else {},
            "code": code,
            "request_id": rid,
        }
    }
