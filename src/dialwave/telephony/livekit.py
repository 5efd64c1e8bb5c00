"""LiveKit, through the official server SDK (livekit-api): per call a room, an agent dispatch for the
number's agent_name (the call's id, token and context URL in its metadata), and a SIP participant on
the number's outbound trunk, created waiting until the callee answers. That wait runs beside the
engine: its answer is the "answered" event, its failure (with the trunk's SIP status) the end. An
answered call ends when the callee leaves the room or the room finishes: LiveKit's webhooks reach us at
POST /v1/carriers/livekit/events (signed JWT checked there) and `on_webhook` turns them into the end."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog

from dialwave.clock import Clock
from dialwave.domain.livekit_outcomes import outcome_for_livekit
from dialwave.domain.outcomes import ANSWERED, NO_ANSWER, PROVIDER_ERROR
from dialwave.domain.phone import mask
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest, PushedEvents, rate_limit_hold

if TYPE_CHECKING:
    import aiohttp
    from livekit.api import LiveKitAPI, ServerError
    from livekit.protocol.webhook import WebhookEvent

log = structlog.get_logger("dialwave.telephony.livekit")
ROOM_PREFIX = "dialwave-"
CALLEE = "callee"  # the SIP participant's identity in the room (never the phone number)
DEPARTURE_TIMEOUT = 5  # seconds the room stays after the last participant left (then room_finished)
_retry_after: ContextVar[str | None] = ContextVar("livekit_retry_after", default=None)


def room_name(call_id: str) -> str:
    return ROOM_PREFIX + call_id


def call_of_room(name: str | None) -> str | None:
    return name.removeprefix(ROOM_PREFIX) if name and name.startswith(ROOM_PREFIX) else None


def dispatch_metadata(request: DialRequest, public_url: str) -> str:
    """What the agent gets with its job: the call's id and token, and where to read its context and
    post its result (GET /v1/calls/{id}/context, POST /v1/calls/{id}/result, with the token)."""
    call = f"{public_url}/v1/calls/{request.call_id}"
    return json.dumps(
        {
            "call_id": request.call_id,
            "token": request.call_token,
            "context_url": f"{call}/context",
            "result_url": f"{call}/result",
            "campaign_id": request.campaign_id,
            "lead_id": request.lead_id,
            "attempt": request.attempt,
        }
    )


# The SDK (with protobuf, PyJWT and aiohttp under it) is imported when a carrier is made, at a server's
# start-up: not with this module, which the API and `dialwave simulate` import without ever dialing
# LiveKit (about a tenth of a simulation's start-up), nor inside a first dial (it would hold the loop).
SDK = ("aiohttp", "livekit.api", "livekit.protocol.webhook")


def _refused() -> type[ServerError]:
    """The SDK's error for a request LiveKit answered with a refusal (for `except`)."""
    from livekit.api import ServerError

    return ServerError


def _unreachable() -> tuple[type[Exception], ...]:
    """The errors of a request that got no answer (for `except`)."""
    import aiohttp

    return (aiohttp.ClientError, TimeoutError)


async def _note_retry_after(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
    """The SDK's errors carry no headers: a 429's or 503's Retry-After is noted here, in the request's task."""
    if params.response.status in (429, 503):
        _retry_after.set(params.response.headers.get("Retry-After"))


@dataclass
class _Track:
    room: str
    settings: dict[str, Any]
    task: asyncio.Task[None] | None = None  # the SIP participant being created, waiting for the answer
    seen: set[str] = field(default_factory=set)  # webhook ids already applied
    answered: bool = False
    hung_up: bool = False
    ended: bool = False


class LiveKitCarrier(PushedEvents):
    name = "livekit"
    simulated = False

    def __init__(self, clock: Clock, public_url: str) -> None:
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.wake: Callable[[], None] | None = None  # the dispatcher's nudge: a dial's answer came in
        self._session: aiohttp.ClientSession | None = None
        self._apis: dict[tuple[str, str, str], LiveKitAPI] = {}
        self.tracks: dict[str, _Track] = {}
        self.queue: list[CallEvent] = []
        for module in SDK:
            importlib.import_module(module)

    def _api(self, settings: dict[str, Any]) -> LiveKitAPI:
        lk = settings.get("livekit") or {}
        key = (lk.get("url") or "", lk.get("api_key") or "", lk.get("api_secret") or "")
        if not all(key):
            raise CarrierError("the phone number has no LiveKit url/api_key/api_secret")
        if key not in self._apis:
            import aiohttp
            from livekit.api import LiveKitAPI

            if self._session is None:
                trace = aiohttp.TraceConfig()
                trace.on_request_end.append(_note_retry_after)
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), trace_configs=[trace])
            # no failover: the SDK would replay a dial against another region, and a call is placed once
            self._apis[key] = LiveKitAPI(*key, session=self._session, failover=False)
        return self._apis[key]

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.tracks:
            return self.tracks[request.call_id].room  # one attempt is never placed twice
        from livekit.api import CreateAgentDispatchRequest, CreateRoomRequest

        api = self._api(request.carrier_settings)
        lk = request.carrier_settings["livekit"]
        room = room_name(request.call_id)
        try:
            await api.room.create_room(
                CreateRoomRequest(
                    name=room,
                    empty_timeout=request.ring_timeout_seconds + 30,
                    departure_timeout=DEPARTURE_TIMEOUT,
                )
            )
            await api.agent_dispatch.create_dispatch(
                CreateAgentDispatchRequest(
                    agent_name=lk["agent_name"], room=room, metadata=dispatch_metadata(request, self.public_url)
                )
            )
        except _refused() as exc:
            raise _error(exc) from exc
        except _unreachable() as exc:
            raise CarrierError(f"LiveKit unreachable: {type(exc).__name__}") from exc
        track = self.tracks[request.call_id] = _Track(room, request.carrier_settings)
        track.task = asyncio.create_task(self._dial(api, track, request, lk), name=f"livekit-dial-{request.call_id}")
        log.info("livekit call placed", call_id=request.call_id, room=room, to=mask(request.to_number))
        return room

    async def _dial(self, api: LiveKitAPI, track: _Track, request: DialRequest, lk: dict[str, Any]) -> None:
        """CreateSIPParticipant, waiting until answered: its answer or its failure becomes the call's event."""
        from livekit.api import CreateSIPParticipantRequest, SipCallError

        create = CreateSIPParticipantRequest(
            sip_trunk_id=lk["sip_trunk_id"],
            sip_call_to=request.to_number,
            sip_number=request.from_number,
            room_name=track.room,
            participant_identity=CALLEE,
            participant_name="callee",
            participant_attributes={"dialwave.call_id": request.call_id},
            wait_until_answered=True,
        )
        create.ringing_timeout.seconds = request.ring_timeout_seconds
        call_id = request.call_id
        try:
            info = await api.sip.create_sip_participant(create)
        except _refused() as exc:
            sip = exc.sip_status_code if isinstance(exc, SipCallError) else None
            outcome = outcome_for_livekit(
                answered=False, sip_code=sip, twirp_code=exc.code, canceled_by_us=track.hung_up
            )
            wait = rate_limit_hold(exc.status, _retry_after.get(), datetime.now(UTC)) if sip is None else None
            log.info("livekit dial ended", call_id=call_id, code=exc.code, sip_code=sip, outcome=outcome)
            self._end(call_id, track, outcome, sip, retry_after=wait)
        except _unreachable() as exc:
            log.warning("livekit dial failed", call_id=call_id, error=type(exc).__name__)
            self._end(call_id, track, NO_ANSWER if track.hung_up else PROVIDER_ERROR, None)
        except Exception:  # a failure of ours in this task must still end the call
            log.exception("livekit dial broke", call_id=call_id)
            self._end(call_id, track, PROVIDER_ERROR, None)
        else:
            if not track.ended and not track.answered:
                track.answered = True
                now = self.clock.now()
                event = CallEvent(call_id, "answered", now, info.sip_call_id or None, answered_by="human")
                # the agent was dispatched to the room before the dial: the callee hears it on answering
                self.queue.extend([event, CallEvent(call_id, "agent_connected", now, info.sip_call_id or None)])
        if self.wake is not None:
            self.wake()

    def _end(
        self, call_id: str, track: _Track, outcome: str, sip: int | None, retry_after: float | None = None
    ) -> None:
        if track.ended:
            return
        track.ended = True
        self.queue.append(
            CallEvent(call_id, "ended", self.clock.now(), outcome=outcome, sip_code=sip, retry_after=retry_after)
        )

    def on_webhook(self, call_id: str, event: WebhookEvent) -> list[CallEvent]:
        """room_finished, or participant_left by the callee, ends an answered call; other events (and the
        end of a call still being dialed: the dial's failure tells that) change nothing."""
        track = self.tracks.get(call_id)
        if track is None or track.ended or (event.id and event.id in track.seen):
            return []
        track.seen.add(event.id)
        finished = event.event == "room_finished" or (
            event.event == "participant_left" and event.participant.identity == CALLEE
        )
        if not finished or not (track.answered or (track.task is None and track.hung_up)):
            return []
        before = len(self.queue)
        self._end(call_id, track, ANSWERED if track.answered else NO_ANSWER, None)
        return self.queue[before:]

    async def hangup(self, call_id: str) -> None:
        """Delete the call's room: the SIP call is ended (or its ringing cancelled), the agent leaves."""
        track = self.tracks.get(call_id)
        if track is None or track.ended:
            return
        track.hung_up = True
        from livekit.api import DeleteRoomRequest

        try:
            await self._api(track.settings).room.delete_room(DeleteRoomRequest(room=track.room))
        except _refused() as exc:
            if exc.status != 404:
                raise _error(exc) from exc
        except _unreachable() as exc:
            raise CarrierError(f"LiveKit unreachable: {type(exc).__name__}") from exc
        if track.task is None and not track.answered:  # adopted after a restart: no dial waits to tell
            self._end(call_id, track, NO_ANSWER, None)

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        """ListParticipants of the call's room: the callee `active` is in a call; a room that is gone ended
        the call (answered if it was), or was never made (None)."""
        track = self.tracks.get(call_id)
        room = provider_call_id or (track.room if track else room_name(call_id))
        api = self._api(settings or (track.settings if track else {}))
        from livekit.api import ListParticipantsRequest

        try:
            listed = await api.room.list_participants(ListParticipantsRequest(room=room))
        except _refused() as exc:
            if exc.status != 404:
                raise _error(exc) from exc
            listed = None
        except _unreachable() as exc:
            raise CarrierError(f"LiveKit unreachable: {type(exc).__name__}") from exc
        if listed is None:
            if track is None:
                return None
            if track.task is not None and not track.task.done():
                return CallStatus("ringing", room, ())
            return self._ended_status(call_id, track)
        track = self.tracks.setdefault(call_id, _Track(room, settings or {}))
        call_status = next(
            (p.attributes.get("sip.callStatus") for p in listed.participants if p.identity == CALLEE), None
        )
        events: tuple[CallEvent, ...] = ()
        if call_status == "active" and not track.answered:
            track.answered = True
            now = self.clock.now()
            events = (
                CallEvent(call_id, "answered", now, room, answered_by="human"),
                CallEvent(call_id, "agent_connected", now, room),
            )
        state: Literal["ringing", "in_call"] = "in_call" if track.answered else "ringing"
        return CallStatus(state, room, events)

    def _ended_status(self, call_id: str, track: _Track) -> CallStatus:
        """The room is gone and no dial waits: the call is over (what was queued for it is handed over here)."""
        events = tuple(e for e in self.queue if e.call_id == call_id)
        self.queue = [e for e in self.queue if e.call_id != call_id]
        if not track.ended:
            outcome = ANSWERED if track.answered else NO_ANSWER
            events += (CallEvent(call_id, "ended", self.clock.now(), track.room, outcome=outcome),)
            track.ended = True
        self.tracks.pop(call_id, None)
        return CallStatus("ended", track.room, events)

    async def close(self) -> None:
        for track in self.tracks.values():
            if track.task is not None and not track.task.done():
                track.task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._apis.clear()


def _error(exc: ServerError) -> CarrierError:
    """A refused request is a provider error for the attempt; a 429 holds the number (Retry-After, else
    the default hold)."""
    message = f"LiveKit {exc.status} ({exc.code}): {exc.message}"[:240]
    return CarrierError(message, retry_after=rate_limit_hold(exc.status, _retry_after.get(), datetime.now(UTC)))
