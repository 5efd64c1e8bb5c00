"""Vapi, through its official SDK (vapi-server-sdk, async client): POST /call with the number's assistant
and Vapi phone number, the callee, and assistantOverrides carrying the call's variables
(variableValues), our ids and token (metadata) and the server URL Vapi sends this call's messages to
(status-update and end-of-call-report, authenticated by the number's webhook secret). Hang-up is Live
Call Control's `end-call` on the call's monitor.controlUrl; status is GET /call/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from dialwave.clock import Clock
from dialwave.domain.hosted_outcomes import conversion_of, outcome_for_vapi
from dialwave.domain.phone import mask
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest
from dialwave.telephony.hosted import Ending, HostedCarrier, State, Track, leaves_message, metadata, refused

if TYPE_CHECKING:  # the SDK (about 2 s of imports) loads when a Vapi call is first placed, not at start-up
    from vapi import AsyncVapi
    from vapi.core.api_error import ApiError

log = structlog.get_logger("dialwave.telephony.vapi")
SERVER_MESSAGES = ["status-update", "end-of-call-report"]
NO_RETRIES: Any = {"max_retries": 0, "timeout_in_seconds": 10}  # the engine retries by policy, never the SDK
STATES: dict[str, State] = {
    "scheduled": "queued",
    "queued": "queued",
    "ringing": "ringing",
    "in-progress": "answered",
    "forwarding": "answered",
    "ended": "ended",
}


def _seconds(started: Any, ended: Any) -> float | None:
    try:
        return (datetime.fromisoformat(str(ended)) - datetime.fromisoformat(str(started))).total_seconds()
    except ValueError:
        return None


def ending_of(report: dict[str, Any], answered: bool) -> Ending:
    """An end-of-call report (or an ended call resource) -> how the call ended."""
    analysis = report.get("analysis") or {}
    return Ending(
        outcome_for_vapi(report.get("endedReason"), answered),
        conversion=conversion_of(analysis.get("successEvaluation")),
        talk_seconds=_seconds(report.get("startedAt"), report.get("endedAt")),
    )


def result_of(report: dict[str, Any]) -> dict[str, Any] | None:
    """The call's result from an end-of-call report: the analysis summary, the transcript, the
    conversion and Vapi's own fields under data.vapi (None when there is nothing to store)."""
    analysis = report.get("analysis") or {}
    artifact = report.get("artifact") or {}
    summary, transcript = analysis.get("summary"), artifact.get("transcript")
    verdict = analysis.get("successEvaluation")
    if not (summary or transcript or verdict is not None or analysis.get("structuredData")):
        return None
    out: dict[str, Any] = {
        "summary": str(summary)[:20_000] if summary else None,
        "transcript": str(transcript)[:2_000_000] if transcript else None,
        "data": {
            "vapi": {
                "ended_reason": report.get("endedReason"),
                "success_evaluation": verdict,
                "structured_data": analysis.get("structuredData"),
                "recording_url": artifact.get("recordingUrl"),
            }
        },
    }
    conversion = conversion_of(verdict)
    if conversion is not None:
        out["conversion"] = conversion
    return out


class VapiCarrier(HostedCarrier["AsyncVapi"]):
    name = "vapi"
    label = "Vapi"

    def __init__(self, clock: Clock, public_url: str, api_base: str = "https://api.vapi.ai") -> None:
        super().__init__(clock, public_url, api_base)

    def new_client(self, api_key: str, http: httpx.AsyncClient) -> AsyncVapi:
        from vapi import AsyncVapi

        return AsyncVapi(token=api_key, base_url=self.api_base, httpx_client=http)

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.tracks:
            return self.tracks[request.call_id].provider_id  # one attempt is never placed twice
        from vapi.core.api_error import ApiError
        from vapi.types import AssistantOverrides, Call, CreateCustomerDto, Server, VapiVoicemailDetectionPlan

        settings = request.carrier_settings
        vapi = settings.get("vapi") or {}
        client = self.client(settings)
        url = self.callback_url(request.call_id)
        if vapi.get("credential_id"):  # Vapi authenticates with the user's Bearer Token credential
            server = Server(url=url, timeout_seconds=20, credential_id=vapi["credential_id"])
        else:  # the legacy secret header, sent by Vapi as given
            server = Server(url=url, timeout_seconds=20, headers={"X-Vapi-Secret": vapi.get("webhook_secret")})
        machine: dict[str, Any] = {}
        if request.machine_detection:  # Vapi's own detection; its voicemailMessage is said, else it hangs up
            machine["voicemail_detection"] = VapiVoicemailDetectionPlan(provider="vapi")
            if request.voicemail_message:
                machine["voicemail_message"] = request.voicemail_message
        overrides = AssistantOverrides(
            variable_values=dict(request.variables),
            metadata=metadata(request),
            server=server,
            server_messages=SERVER_MESSAGES,
            **machine,
        )
        try:
            created = await client.calls.create(
                assistant_id=vapi.get("assistant_id"),
                phone_number_id=vapi.get("phone_number_id"),
                customer=CreateCustomerDto(number=request.to_number),
                assistant_overrides=overrides,
                request_options=NO_RETRIES,
            )
        except ApiError as exc:
            raise _error(exc) from exc
        except httpx.HTTPError as exc:
            raise CarrierError(f"Vapi unreachable: {type(exc).__name__}") from exc
        if not isinstance(created, Call):
            raise CarrierError("Vapi answered a batch instead of one call")
        control = created.monitor.control_url if created.monitor is not None else None
        track = Track(
            str(created.id), settings, request.at, control_url=control, leaves_message=leaves_message(request)
        )
        self.tracks[request.call_id] = track
        log.info("vapi call created", call_id=request.call_id, id=track.provider_id, to=mask(request.to_number))
        return track.provider_id

    async def hangup(self, call_id: str) -> None:
        """Live Call Control: POST {"type": "end-call"} to the call's control URL (fetched if not known)."""
        track = self.tracks.get(call_id)
        if track is None or track.ended:
            return
        from vapi.core.api_error import ApiError

        track.hung_up = True
        try:
            if track.control_url is None:
                call = await self.client(track.settings).calls.get(track.provider_id, request_options=NO_RETRIES)
                track.control_url = call.monitor.control_url if call.monitor is not None else None
            if track.control_url is None:
                raise CarrierError("the Vapi call has no control URL (monitorPlan.controlEnabled is off)")
            response = await self.http().post(track.control_url, json={"type": "end-call"})
        except ApiError as exc:
            raise _error(exc) from exc
        except httpx.HTTPError as exc:
            raise CarrierError(f"Vapi unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400 and response.status_code != 404:
            raise CarrierError(f"Vapi {response.status_code}: end-call refused")

    def on_message(self, call_id: str, message: dict[str, Any]) -> list[CallEvent]:
        """A server message for one of our calls: the events it adds (status-update, end-of-call-report;
        other types change nothing)."""
        call = message.get("call") or {}
        provider_id = str(call.get("id") or self.known_id(call_id) or "")
        kind = message.get("type")
        if kind == "status-update":
            state = STATES.get(str(message.get("status")), "queued")
            if state == "ended":
                return []  # the end-of-call report follows with the analysis: it ends the call
            return self.advance(call_id, provider_id, state)
        if kind == "end-of-call-report":
            track = self.tracks.get(call_id)
            return self.advance(call_id, provider_id, "ended", ending_of(message, track is not None and track.answered))
        return []

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        track = self.tracks.get(call_id)
        provider_id = provider_call_id or (track.provider_id if track else None)
        if not provider_id:
            return None
        from vapi.core.api_error import ApiError

        client = self.client(settings or (track.settings if track else {}))
        try:
            call = await client.calls.get(provider_id, request_options=NO_RETRIES)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise _error(exc) from exc
        except httpx.HTTPError as exc:
            raise CarrierError(f"Vapi unreachable: {type(exc).__name__}") from exc
        body = call.dict()
        state = STATES.get(str(body.get("status")), "queued")
        ending = ending_of(body, track is not None and track.answered) if state == "ended" else None
        return self.as_status(call_id, provider_id, state, ending)


def _error(exc: ApiError) -> CarrierError:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or body.get("error") or str(exc.body)[:200]
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    return refused("Vapi", exc.status_code, str(message), headers.get("retry-after"))
