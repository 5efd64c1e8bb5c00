"""A local fake of Twilio's documented REST API (2010-04-01 Calls resource) for the official SDK to talk
to, and a helper that sends status callbacks signed exactly as Twilio signs them (the SDK's
RequestValidator computes the signature)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

ACCOUNT = "AC" + "0" * 31 + "1"
TOKEN = "fake-auth-token-0123456789"


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class FakeTwilio:
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # sid -> call
    created: list[dict[str, Any]] = field(default_factory=list)  # the form of every create, in order
    updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) for creates

    def _auth(self, request: Request, account: str) -> JSONResponse | None:
        expected = httpx.BasicAuth(ACCOUNT, TOKEN)._auth_header
        if account != ACCOUNT or request.headers.get("authorization") != expected:
            return _error(401, 20003, "Authenticate")
        return None

    def _json(self, call: dict[str, Any]) -> dict[str, Any]:
        sid = call["sid"]
        return {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": call["To"],
            "from": call["From"],
            "status": call["status"],
            "direction": "outbound-api",
            "duration": call.get("duration"),
            "answered_by": call.get("answered_by"),
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json",
        }

    async def create(self, request: Request) -> Response:
        denied = self._auth(request, request.path_params["account"])
        if denied:
            return denied
        form = await request.form()
        params: dict[str, Any] = {k: form.getlist(k) if k == "StatusCallbackEvent" else form[k] for k in form}
        self.created.append(params)
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return _error(
                status,
                20429 if status == 429 else 20500,
                "Too Many Requests" if status == 429 else "Service unavailable",
                headers,
            )
        for required in ("To", "From"):
            if required not in params:
                return _error(400, 21201, f"No '{required}' number is specified")
        sid = "CA" + secrets.token_hex(16)
        call = {"sid": sid, "status": "queued", **params}
        self.calls[sid] = call
        return JSONResponse(self._json(call), status_code=201)

    def _call(self, request: Request) -> dict[str, Any] | JSONResponse:
        """The call the path names, or the error Twilio would answer."""
        denied = self._auth(request, request.path_params["account"])
        if denied:
            return denied
        call = self.calls.get(request.path_params["sid"])
        return call if call is not None else _error(404, 20404, "The requested resource was not found")

    async def fetch(self, request: Request) -> Response:
        call = self._call(request)
        return call if isinstance(call, JSONResponse) else JSONResponse(self._json(call))

    async def update(self, request: Request) -> Response:
        call = self._call(request)
        if isinstance(call, JSONResponse):
            return call
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.updates.append((call["sid"], form))
        if "Status" in form:
            call["status"] = form["Status"]
        return JSONResponse(self._json(call))

    def app(self) -> Starlette:
        base = "/2010-04-01/Accounts/{account}/Calls"
        return Starlette(
            routes=[
                Route(base + ".json", self.create, methods=["POST"]),
                Route(base + "/{sid}.json", self.fetch, methods=["GET"]),
                Route(base + "/{sid}.json", self.update, methods=["POST"]),
            ]
        )

    def sid_for(self, to: str) -> str:
        return next(sid for sid, c in self.calls.items() if c["To"] == to)


async def callback(
    client: httpx.AsyncClient, public_url: str, call_id: str, params: dict[str, str], token: str = TOKEN
) -> httpx.Response:
    """POST a status callback to dialwave as Twilio would: form-encoded, X-Twilio-Signature over the
    callback URL Twilio was given and the POST parameters."""
    body, headers = signed_callback(public_url, call_id, params, token)
    return await client.post(f"/v1/carriers/twilio/status/{call_id}", data=body, headers=headers)


def signed_callback(
    public_url: str, call_id: str, params: dict[str, str], token: str = TOKEN
) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers of a status callback as Twilio sends it: X-Twilio-Signature over the callback
    URL Twilio was given and the POST parameters."""
    return signed_form(f"{public_url}/v1/carriers/twilio/status/{call_id}", params, token)


def signed_form(url: str, params: dict[str, str], token: str = TOKEN) -> tuple[dict[str, str], dict[str, str]]:
    """A form Twilio posts to `url` (a status callback, a Messaging webhook) and its X-Twilio-Signature."""
    body = {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", **params}
    return body, {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, body)}
