"""Call outcomes: the one table mapping carrier results (SIP codes, end reasons) to outcomes, and the
classification of answered calls (short_duration, no_conversion)."""

from __future__ import annotations

from dataclasses import dataclass

# Outcomes a call can end with in the public API, plus internal_error for our own failures.
ANSWERED, VOICEMAIL, BUSY, NO_ANSWER, FAILED = "answered", "voicemail", "busy", "no_answer", "failed"
PROVIDER_ERROR, SHORT_DURATION, OPTED_OUT, INTERNAL_ERROR = (
    "provider_error",
    "short_duration",
    "opted_out",
    "internal_error",
)
NO_CONVERSION = "no_conversion"  # a retry reason, not a call outcome: answered, conversion false
CALL_OUTCOMES = (
    ANSWERED,
    VOICEMAIL,
    BUSY,
    NO_ANSWER,
    FAILED,
    PROVIDER_ERROR,
    SHORT_DURATION,
    OPTED_OUT,
    INTERNAL_ERROR,
)
REACHED = frozenset({ANSWERED, SHORT_DURATION, OPTED_OUT, NO_CONVERSION})

# Final SIP responses to an INVITE -> outcome. Codes not listed: 4xx -> failed, 5xx/6xx -> see below.
SIP_OUTCOMES: dict[int, str] = {
    200: ANSWERED,
    486: BUSY,
    600: BUSY,
    408: NO_ANSWER,
    480: NO_ANSWER,
    487: NO_ANSWER,  # we sent CANCEL after the ring timeout
    404: FAILED,
    410: FAILED,
    484: FAILED,
    485: FAILED,
    603: FAILED,  # declined
    604: FAILED,
    401: PROVIDER_ERROR,  # our trunk credentials
    403: PROVIDER_ERROR,
    407: PROVIDER_ERROR,
    429: PROVIDER_ERROR,
    500: PROVIDER_ERROR,
    502: PROVIDER_ERROR,
    503: PROVIDER_ERROR,
    504: PROVIDER_ERROR,
}


def outcome_for_sip(code: int | None) -> str:
    if code is None:
        return PROVIDER_ERROR  # no final response at all
    if code in SIP_OUTCOMES:
        return SIP_OUTCOMES[code]
    if 200 <= code < 300:
        return ANSWERED
    if 400 <= code < 500:
        return FAILED
    if 500 <= code < 600:
        return PROVIDER_ERROR
    return FAILED


# Twilio call statuses (status callbacks and GET /Calls/{sid}) -> outcome, and the order they come in:
# a callback never moves a call backwards.
TWILIO_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2}
TWILIO_FINAL = {"completed": ANSWERED, "busy": BUSY, "no-answer": NO_ANSWER, "canceled": NO_ANSWER, "failed": FAILED}
MACHINE_ANSWERS = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}


def outcome_for_twilio(status: str, answered: bool, answered_by: str | None, sip_code: int | None) -> str:
    """A final Twilio status -> outcome. `completed` after an answer is answered (voicemail when AMD said
    machine); a `failed` with a SIP code goes through the SIP table (503 -> provider_error)."""
    if status == "completed" and not answered:
        return NO_ANSWER  # hung up before anyone answered (our cancel after the ring timeout)
    if status == "completed" and answered_by in MACHINE_ANSWERS:
        return VOICEMAIL
    if status == "failed" and sip_code is not None:
        return outcome_for_sip(sip_code)
    return TWILIO_FINAL.get(status, FAILED)


@dataclass(frozen=True)
class Classified:
    outcome: str  # stored on the call
    reason: str  # drives the retry decision: the outcome, or no_conversion


# The classifications, made once (a call's end picks one of them: no object built per call).
_AS_IS: dict[str, Classified] = {outcome: Classified(outcome, outcome) for outcome in CALL_OUTCOMES}
_NOT_CONVERTED = Classified(ANSWERED, NO_CONVERSION)


def classify(raw: str, talk_seconds: float | None, conversion: bool | None, short_threshold: int | None) -> Classified:
    """An answered call shorter than the threshold is short_duration; an answered call whose
    conversion is reported false is retried as no_conversion."""
    if raw == ANSWERED:
        if short_threshold is not None and talk_seconds is not None and talk_seconds < short_threshold:
            return _AS_IS[SHORT_DURATION]
        if conversion is False:
            return _NOT_CONVERTED
    return _AS_IS.get(raw) or Classified(raw, raw)
