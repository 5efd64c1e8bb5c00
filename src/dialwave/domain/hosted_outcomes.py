"""Hosted voice-agent platforms (Vapi, Retell): how a call's end reason becomes a dialwave outcome, and
how their post-call analysis becomes a conversion. Pure tables and rules; docs/carriers.md shows them.

The rule for every platform: an end the callee caused or the conversation reached normally is
`answered`; the callee's line (busy, no answer, declined, unreachable number) gives busy, no_answer or
failed as the SIP table does; a machine is `voicemail`; anything that is the platform's, the account's or
the agent pipeline's fault is `provider_error` (retried by policy, counted by the circuit breaker), even
when it cut an answered call short."""

from __future__ import annotations

from typing import Any

from dialwave.domain.outcomes import ANSWERED, BUSY, FAILED, NO_ANSWER, PROVIDER_ERROR, VOICEMAIL

# --- Vapi: `endedReason` of the end-of-call report (and of GET /call/{id}) -------------------------------
VAPI_EXACT: dict[str, str] = {
    # the conversation happened and ended normally
    "assistant-ended-call": ANSWERED,
    "assistant-ended-call-after-message-spoken": ANSWERED,
    "assistant-ended-call-with-hangup-task": ANSWERED,
    "assistant-said-end-call-phrase": ANSWERED,
    "assistant-forwarded-call": ANSWERED,
    "customer-ended-call": ANSWERED,
    "customer-ended-call-before-warm-transfer": ANSWERED,
    "customer-ended-call-after-warm-transfer-attempt": ANSWERED,
    "customer-ended-call-during-transfer": ANSWERED,
    "exceeded-max-duration": ANSWERED,
    "silence-timed-out": ANSWERED,
    "call.in-progress.twilio-completed-call": ANSWERED,
    "call.in-progress.sip-completed-call": ANSWERED,
    "vonage-completed": ANSWERED,
    "call.ending.hook-executed-say": ANSWERED,
    "call.ending.hook-executed-transfer": ANSWERED,
    "call.forwarding.operator-busy": ANSWERED,  # the callee was reached; the transfer target was busy
    "call.forwarding.no-answer": ANSWERED,
    "call.in-progress.error-transfer-failed": ANSWERED,
    "call.in-progress.error-warm-transfer-max-duration": ANSWERED,
    "call.in-progress.error-warm-transfer-assistant-cancelled": ANSWERED,
    "call.in-progress.error-warm-transfer-silence-timeout": ANSWERED,
    "call.in-progress.error-warm-transfer-microphone-timeout": ANSWERED,
    # the callee's line
    "voicemail": VOICEMAIL,
    "customer-busy": BUSY,
    "customer-did-not-answer": NO_ANSWER,
    "call.in-progress.error-providerfault-outbound-sip-408-request-timeout": NO_ANSWER,
    "call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable": NO_ANSWER,
    "twilio-failed-to-connect-call": FAILED,
    "twilio-reported-customer-misdialed": FAILED,
    "vonage-rejected": FAILED,
    "vonage-failed-to-connect-call": FAILED,
    "sip-outbound-unallocated-number": FAILED,
    "call.in-progress.error-sip-outbound-call-failed-to-connect": FAILED,
    "customer-did-not-give-microphone-permission": FAILED,  # web calls only
}
# Families by prefix, in order (the first that matches decides); anything else is provider_error.
VAPI_PREFIXES: tuple[tuple[str, str], ...] = (
    ("customer-ended-call", ANSWERED),
    ("assistant-ended-call", ANSWERED),
    ("call.start.", PROVIDER_ERROR),  # account, billing, resources, limits: before the phone rang
    ("call-start-error", PROVIDER_ERROR),
    ("assistant-request-", PROVIDER_ERROR),
    ("assistant-not-", PROVIDER_ERROR),
    ("pipeline-error-", PROVIDER_ERROR),  # the agent's LLM, voice or transcriber failed
    ("call.in-progress.error-", PROVIDER_ERROR),  # vapifault, providerfault, configfault, pipeline
    ("call.ringing.", PROVIDER_ERROR),  # inbound-only reasons: never expected on our outbound calls
)
VAPI_CANCELED = "manually-canceled"  # our hang-up: no_answer while ringing, answered after the answer


def outcome_for_vapi(ended_reason: str | None, answered: bool) -> str:
    """A Vapi `endedReason` -> outcome. `answered`: Vapi said the call was in progress before it ended."""
    reason = ended_reason or ""
    if reason == VAPI_CANCELED:
        return ANSWERED if answered else NO_ANSWER
    if reason in VAPI_EXACT:
        return VAPI_EXACT[reason]
    for prefix, outcome in VAPI_PREFIXES:
        if reason.startswith(prefix):
            return outcome
    return PROVIDER_ERROR  # worker-shutdown, phone-call-provider-closed-websocket, call-deleted, unknown


# --- Retell: `disconnection_reason` of call_ended / call_analyzed (and of GET /v2/get-call) -------------
RETELL_OPT_OUT = "user_requested_dnc"  # answered, and the person asked not to be called again
RETELL_STOPPED = "manual_stopped"  # our stop-call: no_answer while ringing, answered after the answer
RETELL_OUTCOMES: dict[str, str] = {
    "user_hangup": ANSWERED,
    "agent_hangup": ANSWERED,
    "call_transfer": ANSWERED,
    "transfer_bridged": ANSWERED,
    "transfer_cancelled": ANSWERED,
    "call_take_over": ANSWERED,
    "inactivity": ANSWERED,
    "max_duration_reached": ANSWERED,
    "user_requested_callback": ANSWERED,
    RETELL_OPT_OUT: ANSWERED,
    "voicemail_reached": VOICEMAIL,
    "machine_detected": VOICEMAIL,  # older docs: drop_call_if_machine_detected
    "ivr_reached": VOICEMAIL,  # a machine answered (an IVR), the agent hung up
    "dial_busy": BUSY,
    "dial_no_answer": NO_ANSWER,
    "dial_failed": FAILED,
    "invalid_destination": FAILED,
    "user_declined": FAILED,  # like SIP 603
    "marked_as_spam": FAILED,
    "network_blocked": FAILED,
    "telephony_provider_permission_denied": PROVIDER_ERROR,
    "telephony_provider_unavailable": PROVIDER_ERROR,
    "sip_routing_error": PROVIDER_ERROR,
    "concurrency_limit_reached": PROVIDER_ERROR,
    "no_concurrency_fallback": PROVIDER_ERROR,
    "no_valid_payment": PROVIDER_ERROR,
    "credit_exhausted": PROVIDER_ERROR,
    "budget_reached": PROVIDER_ERROR,
    "scam_detected": PROVIDER_ERROR,
    "registered_call_timeout": PROVIDER_ERROR,
    "error_user_not_joined": PROVIDER_ERROR,
    "error_inbound_webhook": PROVIDER_ERROR,  # older docs, inbound only
    "error_llm_websocket_open": PROVIDER_ERROR,
    "error_llm_websocket_lost_connection": PROVIDER_ERROR,
    "error_llm_websocket_runtime": PROVIDER_ERROR,
    "error_llm_websocket_corrupt_payload": PROVIDER_ERROR,
    "error_no_audio_received": PROVIDER_ERROR,
    "error_asr": PROVIDER_ERROR,
    "error_retell": PROVIDER_ERROR,
    "error_unknown": PROVIDER_ERROR,
}


def outcome_for_retell(reason: str | None, answered: bool) -> str:
    """A Retell `disconnection_reason` -> outcome (unknown reasons: provider_error)."""
    if reason == RETELL_STOPPED:
        return ANSWERED if answered else NO_ANSWER
    return RETELL_OUTCOMES.get(reason or "", PROVIDER_ERROR)


# --- conversion from the platforms' post-call analysis --------------------------------------------------
_YES = {"true", "pass", "passed", "yes", "success", "successful"}
_NO = {"false", "fail", "failed", "no", "failure", "unsuccessful"}


def conversion_of(verdict: Any) -> bool | None:
    """Vapi's `analysis.successEvaluation` (a string whose form depends on the rubric) or Retell's
    `call_analysis.call_successful` (a boolean) -> conversion. Pass/fail forms decide; other rubrics
    (a 1-10 score, a letter grade, a description) decide nothing (None)."""
    if isinstance(verdict, bool):
        return verdict
    if isinstance(verdict, str):
        word = verdict.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None
