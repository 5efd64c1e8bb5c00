"""A local fake of Vapi's documented API for the official SDK to talk to: POST /call, GET /call/{id}
(Bearer auth with the private key, NestJS-style error bodies {message, error, statusCode}), each call's
Live Call Control URL (monitor.controlUrl, `end-call`), and the server messages Vapi sends for a call
(status-update, end-of-call-report) to the server URL of the call's assistantOverrides, with the
headers given there, or those of the Bearer Token credential named by its credentialId."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "vapi-private-key-0000-1111-2222"
SECRET = "vapi-server-secret-0123456789"
ASSISTANT = "asst-5b0a4a08-133c-4146-9315-0984f8c6be80"
VAPI_NUMBER = "pn-42b4b25d-031e-4786-857f-63b346c9580f"
CREDENTIAL = "cred-bearer-0001"
Deliver = Callable[[str, dict[str, Any], dict[str, str]], Awaitable[int]]


def _error(status: int, error: str, message: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "error": error, "statusCode": status}, status, headers=headers)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class FakeVapi:
    base: str = ""  # where the fake is served (for monitor.controlUrl)
    deliver: Deliver | None = None  # POSTs a server message to dialwave: (url, json, headers) -> status
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # every POST /call body, in order
    controls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) for creates
    # Bearer Token custom credentials (dashboard): id -> (header name, token, bearer prefix on)
    credentials: dict[str, tuple[str, str, bool]] = field(
        default_factory=lambda: {CREDENTIAL: ("Authorization", SECRET, True)}
    )
    delivered: list[int] = field(default_factory=list)

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(
                401,
                "Unauthorized",
                "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
            )
        return None

    async def create(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        body = await request.json()
        self.created.append(body)
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            text = {429: ("Too Many Requests", "Too many requests"), 400: ("Bad Request", ["bad request"])}
            error, message = text.get(status, ("Service Unavailable", "Service Unavailable"))
            return _error(status, error, message, headers)
        missing = [k for k in ("phoneNumberId",) if not body.get(k)]
        if not (body.get("assistantId") or body.get("assistant")):
            missing.append("assistantId")
        if not (body.get("customer") or {}).get("number"):
            missing.append("customer.number")
        detection = (body.get("assistantOverrides") or {}).get("voicemailDetection")
        providers = ("vapi", "google", "openai", "twilio")  # "off", or a plan naming one of these
        plan_ok = isinstance(detection, dict) and detection.get("provider") in providers
        if detection not in (None, "off") and not plan_ok:
            missing.append("assistantOverrides.voicemailDetection.provider")
        if missing:
            return _error(400, "Bad Request", [f"{m} should not be empty" for m in missing])
        call_id = str(uuid.uuid4())
        now = _iso(datetime.now(UTC))
        call = {
            "id": call_id,
            "orgId": "org-fake",
            "type": "outboundPhoneCall",
            "status": "queued",
            "assistantId": body.get("assistantId"),
            "phoneNumberId": body["phoneNumberId"],
            "customer": body["customer"],
            "assistantOverrides": body.get("assistantOverrides") or {},
            "phoneCallProvider": "twilio",
            "phoneCallTransport": "pstn",
            "createdAt": now,
            "updatedAt": now,
            "monitor": {
                "listenUrl": f"wss://fake.vapi.test/{call_id}/listen",
                "controlUrl": f"{self.base}/{call_id}/control",
            },
        }
        self.calls[call_id] = call
        return JSONResponse(call, 201)

    async def get(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        call = self.calls.get(request.path_params["id"])
        return JSONResponse(call) if call is not None else _error(404, "Not Found", "Call not found")

    async def control(self, request: Request) -> Response:
        call_id = request.path_params["id"]
        if call_id not in self.calls:
            return _error(404, "Not Found", "Call not found")
        self.controls.append((call_id, await request.json()))
        return Response("Ok", 200)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook/call", self.create, methods=["POST"]),
                Route("/hook/call/{id}", self.get, methods=["GET"]),
                Route("/hook/{id}/control", self.control, methods=["POST"]),
            ]
        )

    # -- the call's life, as Vapi reports it to the call's server URL -------------------------------------
    def id_for(self, to: str) -> str:
        return next(i for i, c in self.calls.items() if c["customer"]["number"] == to)

    async def send(self, call_id: str, message: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        """POST a server message for the call where its assistantOverrides.server says, authenticated as it
        says (its headers, or its credential's), unless `headers` replaces them (a forgery)."""
        assert self.deliver is not None
        call = self.calls[call_id]
        server = call["assistantOverrides"].get("server") or {}
        sent = {k: str(v) for k, v in (server.get("headers") or {}).items()}
        if server.get("credentialId"):
            name, token, bearer = self.credentials[server["credentialId"]]
            sent[name] = f"Bearer {token}" if bearer else token
        if headers is not None:
            sent = headers
        payload = {
            "message": {
                **message,
                "timestamp": int(datetime.now(UTC).timestamp() * 1000),
                "call": call,
                "customer": call["customer"],
                "phoneNumber": {"id": call["phoneNumberId"]},
            }
        }
        status = await self.deliver(server["url"], payload, sent)
        self.delivered.append(status)
        return status

    async def status(self, call_id: str, status: str) -> int:
        self.calls[call_id]["status"] = status
        if status == "in-progress":
            self.calls[call_id]["startedAt"] = _iso(datetime.now(UTC))
        return await self.send(call_id, {"type": "status-update", "status": status})

    async def end(
        self,
        call_id: str,
        reason: str,
        *,
        summary: str | None = None,
        success: str | None = None,
        transcript: str | None = None,
        seconds: float = 0,
        report: bool = True,
    ) -> int:
        """The call ends: the call resource says so, then (unless `report` is False: lost) the report."""
        call = self.calls[call_id]
        ended = datetime.now(UTC)
        started = ended - timedelta(seconds=seconds)
        analysis: dict[str, Any] = {}
        if summary is not None:
            analysis["summary"] = summary
        if success is not None:
            analysis["successEvaluation"] = success
        artifact: dict[str, Any] = {"messages": []}
        if transcript is not None:
            artifact["transcript"] = transcript
            artifact["recordingUrl"] = f"https://storage.vapi.test/{call_id}.wav"
        call.update(
            status="ended",
            endedReason=reason,
            startedAt=_iso(started),
            endedAt=_iso(ended),
            analysis=analysis,
            artifact=artifact,
        )
        if not report:
            return 0
        message = {
            "type": "end-of-call-report",
            "endedReason": reason,
            "analysis": analysis,
            "artifact": artifact,
            "startedAt": call["startedAt"],
            "endedAt": call["endedAt"],
        }
        return await self.send(call_id, message)
