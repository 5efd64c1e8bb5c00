"""Twilio, through the official SDK (async client): calls.create with status callbacks and async AMD,
TwiML that connects the answered call to the agent's media stream, hang-up, and status for
reconciliation. Status callbacks reach us at POST /v1/carriers/twilio/status/{call_id} (signature
checked there); `on_callback` turns them into call events, never moving a call backwards."""

from __future__ import annotations

import importlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from xml.sax.saxutils import quoteattr

import structlog

from dialwave.clock import Clock
from dialwave.domain.outcomes import MACHINE_ANSWERS, TWILIO_FINAL, TWILIO_RANK, outcome_for_twilio
from dialwave.domain.phone import mask
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest, PushedEvents, retry_after_seconds

if TYPE_CHECKING:
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

# The SDK's exceptions carry no response headers: its HTTP client notes a refusal's Retry-After here,
# in the context of the request's own task, for `_error` to read.
_retry_after: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


# The SDK (with requests, urllib3 and aiohttp under it) is imported when a carrier is made, at a server's
# start-up: not with this module, which the API and `dialwave simulate` import without ever dialing
# Twilio (about a tenth of a simulation's start-up), nor inside a first dial (it would hold the loop).
SDK = ("twilio.base.exceptions", "twilio.http.async_http_client", "twilio.rest")


def _refused() -> type[TwilioRestException]:
    """The SDK's error for a request Twilio answered with a refusal (for `except`)."""
    from twilio.base.exceptions import TwilioRestException

    return cast("type[TwilioRestException]", TwilioRestException)  # the SDK is untyped


def _unreachable() -> tuple[type[Exception], ...]:
    """The errors of a request that got no answer (for `except`)."""
    import aiohttp

    return (aiohttp.ClientError, TimeoutError)


def _http_client() -> AsyncTwilioHttpClient:
    """The SDK's HTTP client, noting a refusal's Retry-After for `_error`."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
        async def request(self, *args: Any, **kwargs: Any) -> Any:
            _retry_after.set(None)
            response = await super().request(*args, **kwargs)
            if response.status_code in (429, 503) and response.headers is not None:
                _retry_after.set(response.headers.get("Retry-After"))
            return response

    return _HttpClient(timeout=10)


log = structlog.get_logger("dialwave.telephony.twilio")
CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]
MAX_AMD_TIMEOUT = 59  # Twilio's MachineDetectionTimeout is 3-59 s (error 21234 beyond)
MESSAGE_END = {"machine_end_beep", "machine_end_silence", "machine_end_other"}  # AMD heard the greeting end


@dataclass
class _Track:
    sid: str
    settings: dict[str, Any]
    rank: int = 0
    answered: bool = False
    answered_by: str | None = None
    ended: bool = False
    voicemail_message: str | None = None  # to leave after the beep when a machine answers
    voicemail_due: bool = False  # AMD heard a machine's greeting end: the message is to be played now
    voicemail_left: bool = False
    streams: bool = True  # the answer connects a media stream (the agent); else <Say> speaks at once
    agent_connected: bool = False


def twiml(request: DialRequest, stream_url: str | None, status_url: str | None = None) -> str:
    """Connect the answered call to the agent's media stream, with the call's variables as parameters.
    `status_url` hears of the stream's start (`StreamEvent=stream-started`): the agent is connected."""
    if not stream_url:
        return "<Response><Say>" + _text(request.opening_message) + "</Say><Hangup/></Response>"
    params = {"call_id": request.call_id, "campaign_id": request.campaign_id, "lead_id": request.lead_id}
    if request.call_token:  # the runtime reads GET /v1/calls/{id}/context with it
        params["token"] = request.call_token
    params |= {f"var_{k}": str(v) for k, v in request.variables.items()}
    inner = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items())
    status = f' statusCallback={quoteattr(status_url)} statusCallbackMethod="POST"' if status_url else ""
    return f"<Response><Connect><Stream url={quoteattr(stream_url)}{status}>{inner}</Stream></Connect></Response>"


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TwilioCarrier(PushedEvents):
    name = "twilio"
    simulated = False

    def __init__(self, clock: Clock, public_url: str, api_base: str = "https://api.twilio.com") -> None:
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base
        self._clients: dict[tuple[str, str], Client] = {}
        self._http: AsyncTwilioHttpClient | None = None
        self.tracks: dict[str, _Track] = {}
        self.queue: list[CallEvent] = []
        for module in SDK:
            importlib.import_module(module)

    def _client(self, settings: dict[str, Any]) -> Client:
        twilio = settings.get("twilio") or {}
        sid, token = twilio.get("account_sid"), twilio.get("auth_token")
        if not sid or not token:
            raise CarrierError("the phone number has no Twilio account_sid/auth_token")
        key = (sid, token)
        if key not in self._clients:
            from twilio.rest import Client

            if self._http is None:
                self._http = _http_client()
            client = Client(sid, token, http_client=self._http)
            client.api.base_url = self.api_base
            self._clients[key] = client
        return self._clients[key]

    def callback_url(self, call_id: str) -> str:
        return f"{self.public_url}/v1/carriers/twilio/status/{call_id}"

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.tracks:
            return self.tracks[request.call_id].sid  # one attempt is never placed twice
        client = self._client(request.carrier_settings)
        options: dict[str, Any] = {}
        if request.machine_detection:
            options = {
                # to leave a message, wait for the greeting's end (the beep); to hang up, decide at once
                "machine_detection": "DetectMessageEnd" if request.voicemail_message else "Enable",
                "machine_detection_timeout": min(request.machine_detection_timeout_seconds, MAX_AMD_TIMEOUT),
                "async_amd": "true",
                "async_amd_status_callback": self.callback_url(request.call_id),
                "async_amd_status_callback_method": "POST",
            }
        try:
            call = await client.calls.create_async(
                to=request.to_number,
                from_=request.from_number,
                twiml=twiml(request, request.agent_stream_url, self.callback_url(request.call_id)),
                status_callback=self.callback_url(request.call_id),
                status_callback_event=CALLBACK_EVENTS,
                status_callback_method="POST",
                timeout=request.ring_timeout_seconds,
                **options,
            )
        except _refused() as exc:
            raise _error(exc) from exc
        except _unreachable() as exc:
            raise CarrierError(f"Twilio unreachable: {type(exc).__name__}") from exc
        sid = str(call.sid)
        self.tracks[request.call_id] = _Track(
            sid,
            request.carrier_settings,
            voicemail_message=request.voicemail_message,
            streams=bool(request.agent_stream_url),
        )
        log.info("twilio call created", call_id=request.call_id, sid=sid, to=mask(request.to_number))
        return sid

    async def hangup(self, call_id: str) -> None:
        track = self.tracks.get(call_id)
        if track is None or track.ended:
            return
        status = "completed" if track.answered else "canceled"
        try:
            await self._client(track.settings).calls(track.sid).update_async(status=status)
        except _refused() as exc:
            if exc.status != 404:
                raise _error(exc) from exc
        except _unreachable() as exc:
            raise CarrierError(f"Twilio unreachable: {type(exc).__name__}") from exc

    def on_callback(self, call_id: str, form: dict[str, str]) -> list[CallEvent]:
        """A status or AMD callback: the events it adds (none for a duplicate or a late, older one)."""
        track = self.tracks.get(call_id)
        sid = form.get("CallSid") or ""
        if track is None:
            track = self.tracks[call_id] = _Track(sid, {})  # a callback for a call adopted after a restart
        if track.ended:
            return []
        now = self.clock.now()
        out: list[CallEvent] = []
        if form.get("AnsweredBy"):
            track.answered_by = form["AnsweredBy"]
            if track.answered_by in MESSAGE_END and track.voicemail_message and not track.voicemail_left:
                track.voicemail_due = True
        if form.get("StreamEvent") == "stream-started":  # the agent's media stream is up
            if track.answered and not track.agent_connected:
                track.agent_connected = True
                out.append(CallEvent(call_id, "agent_connected", now, sid))
                self.queue.extend(out)
            return out
        status = form.get("CallStatus", "")
        final = status in TWILIO_FINAL
        rank = 3 if final else TWILIO_RANK.get(status, -1)
        if rank <= track.rank and not final:
            return out  # a repeat, an older status arriving late, or an AMD-only callback
        if status == "ringing":
            out.append(CallEvent(call_id, "ringing", now, sid))
        if status == "in-progress" and not track.answered:
            track.answered = True
            who: Literal["human", "machine"] = "machine" if track.answered_by in MACHINE_ANSWERS else "human"
            out.append(CallEvent(call_id, "answered", now, sid, answered_by=who))
            if not track.streams and who == "human":  # <Say> speaks as soon as the call is answered
                track.agent_connected = True
                out.append(CallEvent(call_id, "agent_connected", now, sid))
        if final:
            answered = track.answered or (status == "completed" and int(form.get("CallDuration") or 0) > 0)
            code = int(form["SipResponseCode"]) if form.get("SipResponseCode", "").isdigit() else None
            outcome = outcome_for_twilio(status, answered, track.answered_by, code)
            machine = track.answered_by in MACHINE_ANSWERS
            left = track.voicemail_left if machine else None
            out.append(CallEvent(call_id, "ended", now, sid, outcome=outcome, sip_code=code, voicemail_left=left))
            track.ended = True
        track.rank = max(track.rank, rank)
        self.queue.extend(out)
        return out

    async def leave_voicemail(self, call_id: str) -> bool:
        """After an AMD callback heard a machine's greeting end: play the voicemail message and hang up
        (the call's TwiML is replaced). True when the message was sent."""
        track = self.tracks.get(call_id)
        if track is None or not track.voicemail_due or track.ended or not track.voicemail_message:
            return False
        track.voicemail_due = False
        say = '<Response><Pause length="1"/><Say>' + _text(track.voicemail_message) + "</Say><Hangup/></Response>"
        try:
            await self._client(track.settings).calls(track.sid).update_async(twiml=say)
        except _refused() as exc:
            log.warning("voicemail not left", call_id=call_id, error=f"Twilio {exc.status} ({exc.code})")
            return False
        except _unreachable() as exc:
            log.warning("voicemail not left", call_id=call_id, error=type(exc).__name__)
            return False
        track.voicemail_left = True
        log.info("voicemail left", call_id=call_id)
        return True

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        track = self.tracks.get(call_id)
        sid = provider_call_id or (track.sid if track else None)
        if not sid:
            return None  # never created at Twilio
        client = self._client(settings or (track.settings if track else {}))
        try:
            call = await client.calls(sid).fetch_async()
        except _refused() as exc:
            if exc.status == 404:
                return None
            raise _error(exc) from exc
        except _unreachable() as exc:
            raise CarrierError(f"Twilio unreachable: {type(exc).__name__}") from exc
        self.tracks.setdefault(call_id, _Track(sid, settings or {}))
        form = {"CallSid": sid, "CallStatus": str(call.status), "CallDuration": str(call.duration or 0)}
        if getattr(call, "answered_by", None):
            form["AnsweredBy"] = str(call.answered_by)
        events = tuple(self.on_callback(call_id, form))
        self.queue = [e for e in self.queue if e not in events]  # handed over in the status instead
        self._forget_ended(events)
        current = str(call.status)
        state: Literal["ringing", "in_call", "ended"] = (
            "ended" if current in TWILIO_FINAL else "in_call" if current == "in-progress" else "ringing"
        )
        return CallStatus(state, sid, events)

    async def close(self) -> None:
        if self._http is not None and self._http.session is not None:
            await self._http.session.close()


def _error(exc: TwilioRestException) -> CarrierError:
    """A refused request is a provider error for the attempt; a 429's or 503's Retry-After goes with it
    (the engine then sends nothing more through that number until it has passed)."""
    message = f"Twilio {exc.status} ({exc.code}): {exc.msg}"[:240]
    wait = retry_after_seconds(_retry_after.get(), datetime.now(UTC)) if exc.status in (429, 503) else None
    return CarrierError(message, retry_after=wait)
