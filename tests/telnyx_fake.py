"""A local fake of Telnyx's documented Call Control API v2 (POST /v2/calls, GET /v2/calls/{id},
POST /v2/calls/{id}/actions/hangup|transfer) for the official SDK to talk to, and webhooks signed as
Telnyx signs them: Ed25519 over `{telnyx-timestamp}|{body}`, base64 in `telnyx-signature-ed25519`.
`script` plays calls by the number called (its n-th attempt's outcome, the last repeating)."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "KEY0123456789ABCDEF_fake"
SIGNING_KEY = SigningKey(bytes(range(32)))
PUBLIC_KEY = base64.b64encode(bytes(SIGNING_KEY.verify_key)).decode()
OTHER_KEY = SigningKey(bytes(range(1, 33)))  # not the account's: its signatures must be refused

# outcome -> the webhooks that play it: (event_type, payload extras), then what ends it one round later
PLAYS: dict[str, tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]] = {
    "answered": (
        [("call.initiated", {}), ("call.answered", {})],
        [("call.hangup", {"hangup_cause": "normal_clearing", "hangup_source": "callee", "sip_hangup_cause": "200"})],
    ),
    "voicemail": (
        [("call.initiated", {}), ("call.answered", {}), ("call.machine.detection.ended", {"result": "machine"})],
        [("call.hangup", {"hangup_cause": "normal_clearing", "hangup_source": "callee", "sip_hangup_cause": "200"})],
    ),
    "busy": ([("call.initiated", {}), ("call.hangup", {"hangup_cause": "user_busy", "sip_hangup_cause": "486"})], []),
    "no_answer": (
        [("call.initiated", {}), ("call.hangup", {"hangup_cause": "timeout", "sip_hangup_cause": "480"})],
        [],
    ),
    "failed": (
        [("call.initiated", {}), ("call.hangup", {"hangup_cause": "call_rejected", "sip_hangup_cause": "603"})],
        [],
    ),
    "provider_error": (
        [("call.initiated", {}), ("call.hangup", {"hangup_cause": "unspecified", "sip_hangup_cause": "503"})],
        [],
    ),
}


def _error(status: int, code: str, title: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "title": title, "detail": title}]}, status, headers=headers)


def signed(body: dict[str, Any], key: SigningKey = SIGNING_KEY, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = str(at if at is not None else int(time.time()))
    signature = key.sign(stamp.encode() + b"|" + raw).signature
    headers = {
        "content-type": "application/json",
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": stamp,
    }
    return raw, headers


@dataclass
class FakeTelnyx:
    public_url: str = "https://dialwave.example.com"
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # call_control_id -> call
    created: list[dict[str, Any]] = field(default_factory=list)  # every dial's JSON body, in order
    actions: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (ccid, action, body)
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) for dials
    script: dict[str, list[str]] = field(default_factory=dict)  # number -> outcomes by attempt
    attempts: dict[str, int] = field(default_factory=dict)
    due: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (ccid, event, extras) to send
    later: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # sent one round after `due`

    def _auth(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "10009", "Authentication failed")
        return None

    def _json(self, call: dict[str, Any]) -> dict[str, Any]:
        return {
            "call_control_id": call["id"],
            "call_leg_id": call["leg"],
            "call_session_id": call["session"],
            "is_alive": call["alive"],
            "record_type": "call",
            "call_duration": call.get("duration", 0),
        }

    async def dial(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        body = await request.json()
        self.created.append(body)
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return _error(status, "10011" if status == 429 else "10007", "Too many requests", headers)
        for required in ("connection_id", "to", "from"):
            if not body.get(required):
                return _error(422, "10032", f"Missing required parameter: {required}")
        ccid = "v3:" + secrets.token_urlsafe(16)
        call = {"id": ccid, "leg": str(uuid.uuid4()), "session": str(uuid.uuid4()), "alive": True, **body}
        self.calls[ccid] = call
        plan = self.script.get(body["to"])
        if plan:
            n = self.attempts[body["to"]] = self.attempts.get(body["to"], 0) + 1
            first, then = PLAYS[plan[min(n, len(plan)) - 1]]
            self.due += [(ccid, kind, extras) for kind, extras in first]
            self.later += [(ccid, kind, extras) for kind, extras in then]
        return JSONResponse({"data": self._json(call)})

    def _call(self, request: Request) -> dict[str, Any] | JSONResponse:
        denied = self._auth(request)
        if denied:
            return denied
        call = self.calls.get(request.path_params["ccid"])
        return call if call is not None else _error(404, "90015", "Call not found")

    async def status(self, request: Request) -> Response:
        call = self._call(request)
        return call if isinstance(call, JSONResponse) else JSONResponse({"data": self._json(call)})

    async def action(self, request: Request) -> Response:
        call = self._call(request)
        if isinstance(call, JSONResponse):
            return call
        name = request.path_params["action"]
        body = await request.json() if await request.body() else {}
        self.actions.append((call["id"], name, body))
        if not call["alive"]:
            return _error(422, "90018", "Call has already ended")
        if name == "hangup":  # Telnyx then sends call.hangup: queued for the next round
            call["alive"] = False
            self.due = [d for d in self.due if d[0] != call["id"]]
            self.later = [d for d in self.later if d[0] != call["id"]]
            cause = "normal_clearing" if call.get("answered") else "originator_cancel"
            self.due.append((call["id"], "call.hangup", {"hangup_cause": cause, "hangup_source": "caller"}))
        if name == "transfer":  # the agent's leg answers: the two legs are bridged
            self.due.append((call["id"], "call.bridged", {"to": body.get("to")}))
        return JSONResponse({"data": {"result": "ok"}})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/calls", self.dial, methods=["POST"]),
                Route("/v2/calls/{ccid}", self.status, methods=["GET"]),
                Route("/v2/calls/{ccid}/actions/{action}", self.action, methods=["POST"]),
            ]
        )

    def ccid_for(self, to: str) -> str:
        return next(ccid for ccid, c in reversed(self.calls.items()) if c["to"] == to)

    def envelope(self, ccid: str, event_type: str, **extras: Any) -> dict[str, Any]:
        """A webhook as Telnyx documents it: {data: {event_type, id, occurred_at, payload, record_type}, meta}."""
        call = self.calls[ccid]
        payload = {
            "call_control_id": ccid,
            "call_leg_id": call["leg"],
            "call_session_id": call["session"],
            "client_state": call.get("client_state"),
            "connection_id": call["connection_id"],
            "from": call["from"],
            "to": call["to"],
            "direction": "outgoing",
            "state": {"call.hangup": "hangup", "call.answered": "answered"}.get(event_type, "bridging"),
            **extras,
        }
        data = {
            "event_type": event_type,
            "id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload,
            "record_type": "event",
        }
        return {"data": data, "meta": {"attempt": 1, "delivered_to": call["webhook_url"]}}

    async def send(
        self, client: httpx.AsyncClient, ccid: str, event_type: str, key: SigningKey = SIGNING_KEY, **extras: Any
    ) -> httpx.Response:
        return await self.deliver(client, self.envelope(ccid, event_type, **extras), key)

    async def deliver(
        self, client: httpx.AsyncClient, envelope: dict[str, Any], key: SigningKey = SIGNING_KEY, at: int | None = None
    ) -> httpx.Response:
        """POST a webhook to the call's webhook_url (on dialwave's in-process client), signed with `key`."""
        ccid = envelope["data"]["payload"]["call_control_id"]
        url = self.calls[ccid]["webhook_url"].removeprefix(self.public_url)
        kind = envelope["data"]["event_type"]
        self.calls[ccid]["alive"] = self.calls[ccid]["alive"] and kind != "call.hangup"
        self.calls[ccid]["answered"] = self.calls[ccid].get("answered") or kind == "call.answered"
        if kind == "call.answered" and self.calls[ccid].get("stream_url") and not self.calls[ccid].get("streaming"):
            self.calls[ccid]["streaming"] = True  # the media stream to the agent starts after the answer
            self.due.append((ccid, "streaming.started", {"stream_url": self.calls[ccid]["stream_url"]}))
        raw, headers = signed(envelope, key, at)
        return await client.post(url, content=raw, headers=headers)

    async def play(self, client: httpx.AsyncClient) -> int:
        """Send what the script has due now; what ends answered calls becomes due for the next round."""
        due, self.due, self.later = self.due, self.later, []
        for ccid, kind, extras in due:
            response = await self.send(client, ccid, kind, **extras)
            assert response.status_code == 204, response.text
        return len(due)
