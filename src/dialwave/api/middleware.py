"""Pure ASGI middleware: request ids, and `Idempotency-Key` on every POST."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialwave.api.deps import context_of
from dialwave.errors import DialwaveError
from dialwave.ids import new_id
from dialwave.logging import get_logger, mask_phone
from dialwave.services import idempotency
from dialwave.services.auth import authenticate, key_from_headers

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


async def _send_json(send: Send, status: int, body: dict[str, Any] | str, extra: list[tuple[bytes, bytes]]) -> None:
    payload = body if isinstance(body, str) else json.dumps(body)
    data = payload.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class IdempotencyMiddleware:
    """Same key + same request replays the first answer; same key + another request is 422.

    Keys are stored per organization for `idempotency_ttl_hours`. The body is hashed as it streams,
    so a large CSV import is not held in memory for this."""

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
        try:
            who = await authenticate(
                context.db, key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
            )
        except DialwaveError:
            await self.app(scope, receive, send)  # the route answers 401
            return
        now = context.clock.now()
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

        stored = await idempotency.recall(context.db, who.organization_id, key, now, ttl)
        if stored is not None:
            while not body_done:
                if (await hashing_receive())["type"] != "http.request":
                    break
            if hasher.hexdigest() != stored["request_hash"]:
                msg = "was used with a different request; use a new key for a new request"
                await _send_json(send, 422, _err("Idempotency-Key", msg, rid), [])
                return
            replay = [(b"idempotent-replayed", b"true")]
            await _send_json(send, stored["status_code"], stored["response_body"], replay)
            return

        status = 0
        chunks: list[bytes] = []

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, hashing_receive, capturing_send)
        while not body_done:
            if (await hashing_receive())["type"] != "http.request":
                return  # client went away before sending the whole body: nothing to remember
        if status and status < 500 and status not in (401, 429):
            body = b"".join(chunks).decode("utf-8", "replace")
            await idempotency.remember(context.db, who.organization_id, key, hasher.hexdigest(), status, body, now, ttl)


def _err(field: str, message: str, rid: str) -> dict[str, Any]:
    return {
        "error": {
            "type": "validation_error",
            "message": f"{field}: {message}",
            "fields": {field: message},
            "code": None,
            "request_id": rid,
        }
    }
