"""Telnyx Call Control, through the official SDK (AsyncTelnyx): dial with answering machine detection,
the answered call bridged to the agent (a transfer to its sip_uri, or a media stream to its
media_stream_url), hang-up, and status for reconciliation. Webhooks reach us at
POST /v1/carriers/telnyx/events/{call_id} (Ed25519 signature checked there); `on_webhook` turns them
into call events, each event once and never backwards."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import httpx
import structlog

from dialwave.clock import Clock
from dialwave.domain.phone import mask
from dialwave.domain.telnyx_outcomes import TELNYX_MACHINE, outcome_for_telnyx, sip_code_of
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest, PushedEvents, rate_limit_hold

if TYPE_CHECKING:  # the SDK (about 1 s of imports) loads when a Telnyx call is first placed, not at start-up
    import telnyx

log = structlog.get_logger("dialwave.telephony.telnyx")
MACHINE_EVENTS = {"call.machine.detection.ended", "call.machine.premium.detection.ended"}
# the agent has the call: the transfer to its sip_uri was bridged, or its media stream started
CONNECT_EVENTS = {"call.bridged", "streaming.started"}
MIN_TIMEOUT, MAX_TIMEOUT = 5, 600  # Telnyx's timeout_secs range


@dataclass
class _Track:
    call_control_id: str
    settings: dict[str, Any]
    agent_sip_uri: str | None = None
    headers: list[dict[str, str]] = field(default_factory=list)  # for the transfer to the agent
    seen: set[str] = field(default_factory=set)  # webhook event ids already applied
    answered: bool = False
    machine: bool = False
    ended: bool = False
    bridge_due: bool = False
    bridged: bool = False  # the transfer to the agent was accepted (Telnyx dials the agent)
    streams: bool = False  # the agent takes the call as a media stream
    connected: bool = False  # the agent has the callee (agent_connected sent)


def stream_url(request: DialRequest) -> str | None:
    """The agent's media stream, with the call's id and token as query parameters (Telnyx's stream
    `start` message carries no custom parameters)."""
    if not request.agent_stream_url:
        return None
    params = {"call_id": request.call_id, **({"token": request.call_token} if request.call_token else {})}
    sep = "&" if "?" in request.agent_stream_url else "?"
    return request.agent_stream_url + sep + urlencode(params)


def agent_headers(request: DialRequest) -> list[dict[str, str]]:
    """SIP headers for the transfer to the agent's sip_uri: the same X-Dialwave-* as the SIP bridge."""
    headers = [
        {"name": "X-Dialwave-Call-Id", "value": request.call_id},
        {"name": "X-Dialwave-Campaign-Id", "value": request.campaign_id},
        {"name": "X-Dialwave-Lead-Id", "value": request.lead_id},
    ]
    if request.call_token:
        headers.append({"name": "X-Dialwave-Token", "value": request.call_token})
    return headers


class TelnyxCarrier(PushedEvents):
    name = "telnyx"
    simulated = False

    def __init__(self, clock: Clock, public_url: str, api_base: str = "https://api.telnyx.com/v2") -> None:
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base
        self._clients: dict[str, telnyx.AsyncTelnyx] = {}
        self.tracks: dict[str, _Track] = {}
        self.queue: list[CallEvent] = []

    def _client(self, settings: dict[str, Any]) -> telnyx.AsyncTelnyx:
        import telnyx

        key = (settings.get("telnyx") or {}).get("api_key")
        if not key:
            raise CarrierError("the phone number has no Telnyx api_key")
        if key not in self._clients:
            # no retries inside the SDK: a refused dial is the engine's to retry (a 429 holds the number)
            self._clients[key] = telnyx.AsyncTelnyx(api_key=key, base_url=self.api_base, max_retries=0, timeout=10)
        return self._clients[key]

    def webhook_url(self, call_id: str) -> str:
        return f"{self.public_url}/v1/carriers/telnyx/events/{call_id}"

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.tracks:
            return self.tracks[request.call_id].call_control_id  # one attempt is never placed twice
        import telnyx

        config = request.carrier_settings.get("telnyx") or {}
        client = self._client(request.carrier_settings)
        options: dict[str, Any] = {}
        if request.machine_detection:
            options["answering_machine_detection"] = config.get("machine_detection") or "detect"
            options["answering_machine_detection_config"] = {
                "total_analysis_time_millis": request.machine_detection_timeout_seconds * 1000
            }
        stream = stream_url(request) if not request.agent_sip_uri else None
        if stream:
            options |= {"stream_url": stream, "stream_track": "both_tracks"}
        try:
            response = await client.calls.dial(
                connection_id=str(config.get("connection_id")),
                to=request.to_number,
                from_=request.from_number,
                timeout_secs=max(MIN_TIMEOUT, min(request.ring_timeout_seconds, MAX_TIMEOUT)),
                webhook_url=self.webhook_url(request.call_id),
                webhook_url_method="POST",
                client_state=base64.b64encode(request.call_id.encode()).decode(),
                command_id=request.call_id,  # Telnyx ignores a repeated command with the same id
                **options,
            )
        except telnyx.APIStatusError as exc:
            raise _error(exc) from exc
        except telnyx.APIConnectionError as exc:
            raise CarrierError(f"Telnyx unreachable: {type(exc).__name__}") from exc
        if response.data is None:
            raise CarrierError("Telnyx answered the dial without a call")
        ccid = response.data.call_control_id
        self.tracks[request.call_id] = _Track(
            ccid, request.carrier_settings, request.agent_sip_uri, agent_headers(request), streams=bool(stream)
        )
        log.info("telnyx call created", call_id=request.call_id, to=mask(request.to_number))
        return ccid

    async def hangup(self, call_id: str) -> None:
        track = self.tracks.get(call_id)
        if track is None or track.ended:
            return
        import telnyx

        try:
            await self._client(track.settings).calls.actions.hangup(track.call_control_id)
        except telnyx.APIStatusError as exc:
            if exc.status_code not in (404, 422):  # 422: the call has already ended
                raise _error(exc) from exc
        except telnyx.APIConnectionError as exc:
            raise CarrierError(f"Telnyx unreachable: {type(exc).__name__}") from exc

    def on_webhook(self, call_id: str, body: dict[str, Any]) -> list[CallEvent]:
        """One webhook (its `data`): the events it adds (none for a repeat, a late one, or one after the end)."""
        data = body.get("data") or {}
        payload = data.get("payload") or {}
        ccid = str(payload.get("call_control_id") or "")
        track = self.tracks.get(call_id)
        if track is None:
            track = self.tracks[call_id] = _Track(ccid, {})  # a webhook for a call adopted after a restart
        event_id = str(data.get("id") or "")
        if track.ended or (event_id and event_id in track.seen):
            return []
        track.seen.add(event_id)
        kind = data.get("event_type")
        now = self.clock.now()
        out: list[CallEvent] = []
        if kind in MACHINE_EVENTS:
            track.machine = payload.get("result") in TELNYX_MACHINE
        elif kind == "call.answered" and not track.answered:
            track.answered = True
            track.bridge_due = bool(track.agent_sip_uri)
            out.append(CallEvent(call_id, "answered", now, ccid or None, answered_by="human"))
            if not (track.agent_sip_uri or track.streams):  # no agent leg to wait for
                track.connected = True
                out.append(CallEvent(call_id, "agent_connected", now, ccid or None))
        elif kind in CONNECT_EVENTS and track.answered and not track.connected:
            # the answer-to-agent delay is what abandonment measures (compliance.abandon_after_seconds)
            track.connected = True
            out.append(CallEvent(call_id, "agent_connected", now, ccid or None))
        elif kind == "call.hangup":
            code = sip_code_of(payload.get("sip_hangup_cause"))
            outcome = outcome_for_telnyx(payload.get("hangup_cause"), code, track.answered, track.machine)
            left = False if track.answered and track.machine else None
            out.append(
                CallEvent(call_id, "ended", now, ccid or None, outcome=outcome, sip_code=code, voicemail_left=left)
            )
            track.ended = True
        self.queue.extend(out)
        return out

    async def bridge(self, call_id: str) -> bool:
        """After `call.answered`, when the agent has a sip_uri: transfer the call to it with the call's
        X-Dialwave-* headers (once). True when Telnyx took the transfer."""
        track = self.tracks.get(call_id)
        if track is None or not track.bridge_due or track.ended or not track.agent_sip_uri:
            return False
        import telnyx

        track.bridge_due = False
        try:
            await self._client(track.settings).calls.actions.transfer(
                track.call_control_id,
                to=track.agent_sip_uri,
                custom_headers=track.headers,  # type: ignore[arg-type]
            )
        except (telnyx.APIStatusError, telnyx.APIConnectionError) as exc:
            log.warning("transfer to the agent failed", call_id=call_id, error=type(exc).__name__)
            return False
        track.bridged = True
        return True

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        """GET /calls/{call_control_id}: alive (ringing or in a call, as far as we know), or over. A call
        that is over while its hang-up webhook never came: answered if it was, else no_answer."""
        track = self.tracks.get(call_id)
        ccid = provider_call_id or (track.call_control_id if track else None)
        if not ccid:
            return None
        import telnyx

        client = self._client(settings or (track.settings if track else {}))
        try:
            response = await client.calls.retrieve_status(ccid)
        except telnyx.NotFoundError:
            return None
        except telnyx.APIStatusError as exc:
            raise _error(exc) from exc
        except telnyx.APIConnectionError as exc:
            raise CarrierError(f"Telnyx unreachable: {type(exc).__name__}") from exc
        if response.data is None:
            return None
        track = self.tracks.setdefault(call_id, _Track(ccid, settings or {}))
        state: Literal["ringing", "in_call", "ended"] = "in_call" if track.answered else "ringing"
        events: tuple[CallEvent, ...] = ()
        if not response.data.is_alive and not track.ended:
            answered = track.answered or (response.data.call_duration or 0) > 0
            outcome = outcome_for_telnyx(None, None, answered, track.machine)
            events = (CallEvent(call_id, "ended", self.clock.now(), ccid, outcome=outcome),)
            track.ended = True
            self._forget_ended(events)
            state = "ended"
        return CallStatus(state, ccid, events)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _error(exc: telnyx.APIStatusError) -> CarrierError:
    """A refused request is a provider error for the attempt; a 429 (or 503) holds the number for its
    Retry-After (a 429 without one: the default hold)."""
    detail = ""
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get("errors") or []
    if errors and isinstance(errors[0], dict):
        detail = f" ({errors[0].get('code')}): {errors[0].get('title') or errors[0].get('detail') or ''}"
    message = f"Telnyx {exc.status_code}{detail}"[:240]
    headers: httpx.Headers = exc.response.headers
    wait = rate_limit_hold(exc.status_code, headers.get("Retry-After"), datetime.now(UTC))
    return CarrierError(message, retry_after=wait)
