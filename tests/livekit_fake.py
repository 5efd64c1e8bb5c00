"""A local fake of LiveKit's server API as the official SDK speaks it: Twirp over HTTP POST at
/twirp/livekit.{Service}/{Method}, protobuf bodies (livekit-protocol's messages), a bearer JWT signed
with the API secret whose grants the fake checks with the SDK's TokenVerifier, and Twirp errors as JSON
{code, msg, meta} (a failed SIP dial's meta: sip_status_code, sip_status). Webhooks are sent as LiveKit
sends them: protobuf JSON (application/webhook+json) with a JWT in Authorization whose sha256 claim is
the body's SHA-256. `script` plays the SIP dials by the number called (its n-th dial, the last repeating)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from livekit.api import AccessToken, TokenVerifier
from livekit.protocol.agent_dispatch import AgentDispatch, CreateAgentDispatchRequest
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
)
from livekit.protocol.sip import CreateSIPParticipantRequest, SIPParticipantInfo
from livekit.protocol.webhook import WebhookEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "APIfake0123"
API_SECRET = "fake-livekit-secret-0123456789abcdefghij"
SIP_FAILURES = {  # script word -> (SIP status code, reason phrase) of a failed dial
    "busy": (486, "Busy Here"),
    "no_answer": (480, "Temporarily Unavailable"),
    "failed": (404, "Not Found"),
    "declined": (603, "Decline"),
    "provider_error": (503, "Service Unavailable"),
    "canceled": (487, "Request Terminated"),
}


def twirp_error(status: int, code: str, msg: str, meta: dict[str, str] | None = None, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, **({"meta": meta} if meta else {})}, status, headers=headers)


@dataclass
class FakeLiveKit:
    api_key: str = API_KEY
    api_secret: str = API_SECRET
    rooms: dict[str, dict[str, ParticipantInfo]] = field(default_factory=dict)  # room -> identity -> participant
    created_rooms: list[CreateRoomRequest] = field(default_factory=list)
    dispatches: list[CreateAgentDispatchRequest] = field(default_factory=list)
    dials: list[CreateSIPParticipantRequest] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=dict)  # number -> outcomes by dial
    attempts: dict[str, int] = field(default_factory=dict)
    holding: dict[str, asyncio.Future[str]] = field(default_factory=dict)  # room -> how its ringing dial ends
    fail_next: list[tuple[str, int, str, dict[str, str]]] = field(
        default_factory=list
    )  # (method, status, code, headers)
    due: list[str] = field(default_factory=list)  # rooms whose end (webhooks) is sent at the next play()
    later: list[str] = field(default_factory=list)  # ... at the play() after
    grants_seen: list[tuple[str, Any]] = field(default_factory=list)

    def _claims(self, request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        try:
            return TokenVerifier(self.api_key, self.api_secret).verify(auth.removeprefix("Bearer "))
        except Exception:
            return None

    async def twirp(self, request: Request) -> Response:
        service, method = request.path_params["service"], request.path_params["method"]
        if request.headers.get("content-type") != "application/protobuf":
            return twirp_error(415, "malformed", "the SDK sends application/protobuf")
        claims = self._claims(request)
        if claims is None:
            return twirp_error(401, "unauthenticated", "invalid token")
        handler = {
            ("RoomService", "CreateRoom"): (CreateRoomRequest, self.create_room),
            ("RoomService", "DeleteRoom"): (DeleteRoomRequest, self.delete_room),
            ("RoomService", "ListParticipants"): (ListParticipantsRequest, self.list_participants),
            ("AgentDispatchService", "CreateDispatch"): (CreateAgentDispatchRequest, self.create_dispatch),
            ("SIP", "CreateSIPParticipant"): (CreateSIPParticipantRequest, self.create_sip_participant),
        }.get((service, method))
        if handler is None:
            return twirp_error(404, "bad_route", f"no handler for {service}/{method}")
        message_class, handle = handler
        message = message_class.FromString(await request.body())
        self.grants_seen.append((method, claims))
        if not self._allowed(method, message, claims):
            return twirp_error(403, "permission_denied", "the token lacks the grant")
        if self.fail_next and self.fail_next[0][0] == method:
            _, status, code, headers = self.fail_next.pop(0)
            return twirp_error(status, code, "limit reached", **headers)
        result = await handle(message)
        if isinstance(result, Response):
            return result
        return Response(result.SerializeToString(), media_type="application/protobuf")

    @staticmethod
    def _allowed(method: str, message: Any, claims: Any) -> bool:
        video, sip = claims.video, claims.sip
        if method in ("CreateRoom", "DeleteRoom"):
            return bool(video and video.room_create)
        if method in ("ListParticipants", "CreateDispatch"):
            return bool(video and video.room_admin and video.room == message.room)
        return bool(sip and sip.call)  # CreateSIPParticipant

    async def create_room(self, req: CreateRoomRequest) -> Message:
        self.created_rooms.append(req)
        self.rooms.setdefault(req.name, {})
        return Room(sid="RM_" + secrets.token_hex(6), name=req.name, empty_timeout=req.empty_timeout)

    async def delete_room(self, req: DeleteRoomRequest) -> Message | Response:
        if req.room not in self.rooms:
            return twirp_error(404, "not_found", "requested room does not exist")
        self.deleted.append(req.room)
        held = self.holding.pop(req.room, None)
        if held is not None and not held.done():
            held.set_result("canceled")  # the ringing dial is cancelled
            self.rooms.pop(req.room, None)
        elif self.rooms[req.room]:
            self.due.append(req.room)  # LiveKit then sends participant_left and room_finished
        return DeleteRoomResponse()

    async def list_participants(self, req: ListParticipantsRequest) -> Message | Response:
        if req.room not in self.rooms:
            return twirp_error(404, "not_found", "requested room does not exist")
        return ListParticipantsResponse(participants=list(self.rooms[req.room].values()))

    async def create_dispatch(self, req: CreateAgentDispatchRequest) -> Message | Response:
        if req.room not in self.rooms:
            return twirp_error(404, "not_found", "requested room does not exist")
        self.dispatches.append(req)
        return AgentDispatch(
            id="AD_" + secrets.token_hex(6), agent_name=req.agent_name, room=req.room, metadata=req.metadata
        )

    async def create_sip_participant(self, req: CreateSIPParticipantRequest) -> Message | Response:
        self.dials.append(req)
        if req.room_name not in self.rooms:
            return twirp_error(404, "not_found", "requested room does not exist")
        plan = self.script.get(req.sip_call_to) or ["hold"]
        n = self.attempts[req.sip_call_to] = self.attempts.get(req.sip_call_to, 0) + 1
        outcome = plan[min(n, len(plan)) - 1]
        if outcome == "hold":  # rings until the test decides (answer / fail) or the room is deleted
            self.holding[req.room_name] = asyncio.get_running_loop().create_future()
            outcome = await self.holding[req.room_name]
        if outcome == "answered":
            callee = ParticipantInfo(
                sid="PA_" + secrets.token_hex(6),
                identity=req.participant_identity,
                kind=ParticipantInfo.Kind.SIP,
                attributes={**req.participant_attributes, "sip.callStatus": "active"},
            )
            self.rooms[req.room_name][req.participant_identity] = callee
            self.later.append(req.room_name)  # the callee hangs up one play() round later
            return SIPParticipantInfo(
                participant_id=callee.sid,
                participant_identity=callee.identity,
                room_name=req.room_name,
                sip_call_id="SCL_" + secrets.token_hex(6),
            )
        if outcome == "ring_timeout":
            return twirp_error(408, "deadline_exceeded", "ringing timeout")
        code, phrase = SIP_FAILURES[outcome]
        meta = {"sip_status_code": str(code), "sip_status": phrase}
        return twirp_error(503, "unavailable", f"sip status: {code}: {phrase}", meta)

    def decide(self, room: str, outcome: str) -> None:
        """End a held ("hold") dial: answered, or a SIP failure of SIP_FAILURES."""
        self.holding.pop(room).set_result(outcome)

    def release(self) -> None:
        """Cancel every held dial (the server stops: no request is left hanging)."""
        for room in list(self.holding):
            if not self.holding[room].done():
                self.holding.pop(room).set_result("canceled")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/twirp/livekit.{service}/{method}", self.twirp, methods=["POST"])])

    def event(self, kind: str, room: str, identity: str | None = None) -> WebhookEvent:
        event = WebhookEvent(event=kind, room=Room(name=room, sid="RM_x"), id="EV_" + uuid.uuid4().hex)
        event.created_at = int(time.time())
        if identity is not None:
            event.participant.CopyFrom(ParticipantInfo(identity=identity, kind=ParticipantInfo.Kind.SIP))
        return event

    async def deliver(
        self, client: httpx.AsyncClient, event: WebhookEvent, secret: str | None = None, body: str | None = None
    ) -> httpx.Response:
        """POST a webhook as LiveKit does: protobuf JSON, Authorization: a JWT with the body's sha256.
        `secret` signs with another secret; `body` sends another body under the token of `event`."""
        signed_body = MessageToJson(event)
        digest = base64.b64encode(hashlib.sha256(signed_body.encode()).digest()).decode()
        token = AccessToken(self.api_key, secret or self.api_secret).with_sha256(digest).to_jwt()
        headers = {"Authorization": token, "Content-Type": "application/webhook+json"}
        return await client.post("/v1/carriers/livekit/events", content=body or signed_body, headers=headers)

    async def end_room(self, client: httpx.AsyncClient, room: str) -> None:
        """The callee hangs up: participant_left, then room_finished (the agent leaves, the room closes)."""
        for kind, identity in (("participant_left", "callee"), ("room_finished", None)):
            response = await self.deliver(client, self.event(kind, room, identity))
            assert response.status_code == 204, response.text
        self.rooms.pop(room, None)

    async def play(self, client: httpx.AsyncClient) -> int:
        """End the rooms due now; those answered since are due at the next round."""
        due, self.due, self.later = self.due, self.later, []
        for room in dict.fromkeys(due):
            if room in self.rooms:
                await self.end_room(client, room)
        return len(due)
