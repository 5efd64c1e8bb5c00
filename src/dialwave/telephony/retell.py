"""Retell, through its official SDK (retell-sdk, async client): POST /v2/create-phone-call from the
caller number to the callee, with the number's agent (override_agent_id), the call's variables
(retell_llm_dynamic_variables), our ids and token (metadata) and, for this call only, the agent's
webhook pointed at dialwave (agent_override.agent.webhook_url). Webhooks are signed with the API key
(x-retell-signature, checked with the SDK's verify). Hang-up is POST /v2/stop-call/{id}; status is
GET /v2/get-call/{id}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import structlog

from dialwave.clock import Clock
from dialwave.domain.hosted_outcomes import RETELL_OPT_OUT, conversion_of, outcome_for_retell
from dialwave.domain.phone import mask
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest
from dialwave.telephony.hosted import Ending, HostedCarrier, State, Track, leaves_message, metadata, refused

if TYPE_CHECKING:  # the SDK (about 1 s of imports) loads when first used, not at start-up
    from retell import APIStatusError, AsyncRetell
    from retell.types.call_create_phone_call_params import AgentOverride

log = structlog.get_logger("dialwave.telephony.retell")
STATES: dict[str, State] = {
    "registered": "ringing",
    "ongoing": "answered",
    "ended": "ended",
    "not_connected": "ended",
    "error": "ended",
}


def signature_ok(body: str, api_key: str, signature: str) -> bool:
    """The SDK's verify (what `Retell.verify` is): x-retell-signature `v=<ms>,d=<hex>` is the HMAC-SHA256,
    keyed by the API key, of the raw body followed by the timestamp, which must be within 5 minutes."""
    from retell.lib.webhook_auth import verify

    return bool(verify(body, api_key, signature))  # type: ignore[no-untyped-call]


def ending_of(call: dict[str, Any], answered: bool) -> Ending:
    reason = call.get("disconnection_reason")
    analysis = call.get("call_analysis") or {}
    duration = call.get("duration_ms")
    return Ending(
        outcome_for_retell(reason, answered),
        conversion=conversion_of(analysis.get("call_successful")),
        opted_out=reason == RETELL_OPT_OUT,
        talk_seconds=duration / 1000 if isinstance(duration, int | float) else None,
    )


def result_of(call: dict[str, Any]) -> dict[str, Any] | None:
    """The call's result from call_analyzed: the summary, the transcript, call_successful as the
    conversion, an opt-out (user_requested_dnc), and Retell's own fields under data.retell."""
    analysis = call.get("call_analysis") or {}
    if not analysis and not call.get("transcript"):
        return None
    summary, transcript = analysis.get("call_summary"), call.get("transcript")
    out: dict[str, Any] = {
        "summary": str(summary)[:20_000] if summary else None,
        "transcript": str(transcript)[:2_000_000] if transcript else None,
        "data": {
            "retell": {
                "disconnection_reason": call.get("disconnection_reason"),
                "call_successful": analysis.get("call_successful"),
                "in_voicemail": analysis.get("in_voicemail"),
                "user_sentiment": analysis.get("user_sentiment"),
                "custom_analysis_data": analysis.get("custom_analysis_data"),
                "recording_url": call.get("recording_url"),
            }
        },
    }
    conversion = conversion_of(analysis.get("call_successful"))
    if conversion is not None:
        out["conversion"] = conversion
    if call.get("disconnection_reason") == RETELL_OPT_OUT:
        out["opted_out"] = True
    return out


class RetellCarrier(HostedCarrier["AsyncRetell"]):
    name = "retell"
    label = "Retell"

    def __init__(self, clock: Clock, public_url: str, api_base: str = "https://api.retellai.com") -> None:
        super().__init__(clock, public_url, api_base)

    def new_client(self, api_key: str, http: httpx.AsyncClient) -> AsyncRetell:
        from retell import AsyncRetell

        # the engine retries by policy, never the SDK
        return AsyncRetell(api_key=api_key, base_url=self.api_base, max_retries=0, http_client=http)

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self.tracks:
            return self.tracks[request.call_id].provider_id  # one attempt is never placed twice
        from retell import APIConnectionError, APIStatusError

        settings = request.carrier_settings
        retell = settings.get("retell") or {}
        client = self.client(settings)
        webhook: AgentOverride = {  # this call's events go to dialwave (the agent itself is unchanged)
            "agent": {
                "webhook_url": self.callback_url(request.call_id),
                "webhook_events": ["call_started", "call_ended", "call_analyzed"],
            }
        }
        if request.machine_detection:  # Retell's voicemail detection: say the campaign's message, or hang up
            message = request.voicemail_message
            webhook["agent"]["voicemail_option"] = {
                "action": {"type": "static_text", "text": message} if message else {"type": "hangup"}
            }
        try:
            call = await client.call.create_phone_call(
                from_number=request.from_number,
                to_number=request.to_number,
                override_agent_id=str(retell.get("agent_id")),
                retell_llm_dynamic_variables={k: str(v) for k, v in request.variables.items()},
                metadata=metadata(request),
                agent_override=webhook,
            )
        except APIStatusError as exc:
            raise _error(exc) from exc
        except APIConnectionError as exc:
            raise CarrierError(f"Retell unreachable: {type(exc).__name__}") from exc
        self.tracks[request.call_id] = Track(call.call_id, settings, request.at, leaves_message=leaves_message(request))
        log.info("retell call created", call_id=request.call_id, id=call.call_id, to=mask(request.to_number))
        return call.call_id

    async def hangup(self, call_id: str) -> None:
        track = self.tracks.get(call_id)
        if track is None or track.ended:
            return
        from retell import APIConnectionError, APIStatusError

        track.hung_up = True
        try:
            await self.client(track.settings).call.stop(track.provider_id)
        except APIStatusError as exc:
            if exc.status_code != 404:
                raise _error(exc) from exc
        except APIConnectionError as exc:
            raise CarrierError(f"Retell unreachable: {type(exc).__name__}") from exc

    def on_webhook(self, call_id: str, event: str, call: dict[str, Any]) -> list[CallEvent]:
        """call_started (the callee answered), call_ended (its disconnection reason); call_analyzed adds
        no event (its result is stored by the service)."""
        provider_id = str(call.get("call_id") or self.known_id(call_id) or "")
        if event == "call_started":
            return self.advance(call_id, provider_id, "answered")
        if event == "call_ended":
            track = self.tracks.get(call_id)
            return self.advance(call_id, provider_id, "ended", ending_of(call, track is not None and track.answered))
        return []

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        track = self.tracks.get(call_id)
        provider_id = provider_call_id or (track.provider_id if track else None)
        if not provider_id:
            return None
        from retell import APIConnectionError, APIStatusError

        client = self.client(settings or (track.settings if track else {}))
        try:
            call: Any = await client.call.retrieve(provider_id)
        except APIStatusError as exc:
            if exc.status_code == 404:
                return None
            raise _error(exc) from exc
        except APIConnectionError as exc:
            raise CarrierError(f"Retell unreachable: {type(exc).__name__}") from exc
        body = call.to_dict()
        state = STATES.get(str(body.get("call_status")), "ringing")
        ending = ending_of(body, track is not None and track.answered) if state == "ended" else None
        return self.as_status(call_id, provider_id, state, ending)


def _error(exc: APIStatusError) -> CarrierError:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("error_message") or body.get("message") or exc.message
    return refused("Retell", exc.status_code, str(message), exc.response.headers.get("retry-after"))
