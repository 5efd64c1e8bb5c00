"""A local fake of Retell's documented API for the official SDK to talk to: POST /v2/create-phone-call,
GET /v2/get-call/{call_id}, POST /v2/stop-call/{call_id} (Bearer API key), and the webhooks Retell sends
({"event", "call"}, compact JSON) to the call's agent webhook_url, signed as Retell documents:
x-retell-signature `v=<unix ms>,d=<hex HMAC-SHA256 of body + timestamp, keyed by the API key>` (written
here from the documentation, independently of the SDK's verify that dialwave uses)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "key_retell_0123456789abcdef"
AGENT = "agent_8f2e1c4b9d7a6e5f"
Deliver = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


def sign(body: str, key: str = API_KEY, at_ms: int | None = None) -> str:
    stamp = int(time.time() * 1000) if at_ms is None else at_ms
    digest = hmac.new(key.encode(), (body + str(stamp)).encode(), hashlib.sha256).hexdigest()
    return f"v={stamp},d={digest}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message}, status, headers=headers)


@dataclass
class FakeRetell:
    deliver: Deliver | None = None  # POSTs a webhook to dialwave: (url, raw body, headers) -> status
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    webhooks: dict[str, str] = field(default_factory=dict)  # call_id -> the webhook_url it was created with

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Unauthorized: invalid API key")
        return None

    async def create(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        self.created.append(body)
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return _error(status, "Too many requests" if status == 429 else "Service unavailable", headers)
        for required in ("from_number", "to_number"):
            if not body.get(required):
                return _error(400, f"{required} is required")
        voicemail = ((body.get("agent_override") or {}).get("agent") or {}).get("voicemail_option")
        if (
            voicemail is not None
        ):  # the documented shape: {action: {type: static_text + text | prompt + text | hangup ...}}
            action = voicemail.get("action") if isinstance(voicemail, dict) else None
            kind = action.get("type") if isinstance(action, dict) else None
            if kind not in ("static_text", "prompt", "hangup", "bridge_transfer"):
                return _error(400, "agent_override.agent.voicemail_option.action.type is invalid")
            if kind in ("static_text", "prompt") and not isinstance(action.get("text"), str):
                return _error(400, "agent_override.agent.voicemail_option.action.text is required")
        variables = body.get("retell_llm_dynamic_variables") or {}
        if any(not isinstance(v, str) for v in variables.values()):
            return _error(400, "retell_llm_dynamic_variables values must be strings")
        call_id = "call_" + uuid.uuid4().hex
        call = {
            "call_id": call_id,
            "call_type": "phone_call",
            "agent_id": body.get("override_agent_id") or AGENT,
            "agent_version": 1,
            "call_status": "registered",
            "direction": "outbound",
            "from_number": body["from_number"],
            "to_number": body["to_number"],
            "metadata": body.get("metadata"),
            "retell_llm_dynamic_variables": variables,
        }
        self.calls[call_id] = call
        self.webhooks[call_id] = ((body.get("agent_override") or {}).get("agent") or {}).get("webhook_url") or ""
        return JSONResponse(call, 201)

    async def get(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        call = self.calls.get(request.path_params["call_id"])
        return JSONResponse(call) if call is not None else _error(404, "Call not found")

    async def stop(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        call_id = request.path_params["call_id"]
        if call_id not in self.calls:
            return _error(404, "Call not found")
        self.stopped.append(call_id)
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook/v2/create-phone-call", self.create, methods=["POST"]),
                Route("/hook/v2/get-call/{call_id}", self.get, methods=["GET"]),
                Route("/hook/v2/stop-call/{call_id}", self.stop, methods=["POST"]),
            ]
        )

    # -- the call's life, as Retell reports it -------------------------------------------------------------
    def id_for(self, to: str) -> str:
        return next(i for i, c in self.calls.items() if c["to_number"] == to)

    async def send(self, call_id: str, event: str, key: str = API_KEY, signature: str | None = None) -> int:
        assert self.deliver is not None
        body = json.dumps({"event": event, "call": self.calls[call_id]}, separators=(",", ":"), ensure_ascii=False)
        headers = {"content-type": "application/json", "x-retell-signature": signature or sign(body, key)}
        return await self.deliver(self.webhooks[call_id], body.encode(), headers)

    async def start(self, call_id: str) -> int:
        call = self.calls[call_id]
        call.update(call_status="ongoing", start_timestamp=int(time.time() * 1000))
        return await self.send(call_id, "call_started")

    async def end(self, call_id: str, reason: str, seconds: float = 0, webhook: bool = True) -> int:
        call = self.calls[call_id]
        connected = not reason.startswith("dial_") and reason not in ("invalid_destination", "user_declined")
        now = int(time.time() * 1000)
        call.update(
            call_status="ended" if connected else "not_connected",
            disconnection_reason=reason,
            end_timestamp=now,
            duration_ms=int(seconds * 1000),
        )
        if connected:
            call["transcript"] = "Agent: Hello\nUser: Hi"
            call["recording_url"] = f"https://storage.retell.test/{call_id}.wav"
        return await self.send(call_id, "call_ended") if webhook else 0

    async def analyze(self, call_id: str, summary: str, successful: bool | None) -> int:
        analysis: dict[str, Any] = {"call_summary": summary, "user_sentiment": "Positive", "in_voicemail": False}
        if successful is not None:
            analysis["call_successful"] = successful
        self.calls[call_id]["call_analysis"] = analysis
        return await self.send(call_id, "call_analyzed")
