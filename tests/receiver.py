"""A webhook receiver for tests: a real HTTP server on loopback (uvicorn, in the test's event loop) that
verifies every request with the `standardwebhooks` library and processes each webhook-id once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.server import free_port

__all__ = ["ConsentService", "Receiver", "free_port", "serving"]


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)  # a request passes when one of them verifies it
    status: int = 204  # what to answer (after verification)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-id -> envelope, first seen
    requests: list[str] = field(default_factory=list)  # webhook-id of every request, duplicates included
    rejected: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.headers.append(headers)
        envelope = None
        for secret in self.secrets:
            try:
                envelope = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError:
                continue
        if envelope is None:
            self.rejected.append(headers.get("webhook-id", "?"))
            return Response(status_code=401)
        msg_id = headers["webhook-id"]
        self.requests.append(msg_id)
        if self.status < 300:
            self.processed.setdefault(msg_id, envelope)  # idempotent: a repeated id is acknowledged, not redone
        return Response(status_code=self.status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])


@asynccontextmanager
async def serving(
    receiver: Receiver | ConsentService, port: int, certfile: str | None = None, keyfile: str | None = None
) -> AsyncIterator[str]:
    config = uvicorn.Config(
        receiver.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


def payloads(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(e)) for e in receiver.processed.values()]


@dataclass
class ConsentService:
    """A pre-dial hook: denies the numbers in `deny`, answers `slow` numbers after `delay` seconds."""

    deny: dict[str, str] = field(default_factory=dict)  # number -> reason
    slow: set[str] = field(default_factory=set)
    delay: float = 1.0
    secret: str | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)
    verified: int = 0

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if self.secret is not None:
            Webhook(self.secret).verify(body, dict(request.headers))  # raises (-> 500) when forged
            self.verified += 1
        question = json.loads(body)
        self.asked.append(question)
        number = question["phone_number"]
        if number in self.slow:
            await asyncio.sleep(self.delay)
        if number in self.deny:
            answer: dict[str, Any] = {"allow": False, "reason": self.deny[number]}
        else:
            answer = {"allow": True}
        return Response(json.dumps(answer), media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])
