"""LiveKit: how a call's end maps to an outcome. The SIP participant is created waiting until the callee
answers; a failure carries the trunk's SIP status (the SIP table decides), or only a Twirp error code."""

from __future__ import annotations

from dialwave.domain.outcomes import ANSWERED, NO_ANSWER, PROVIDER_ERROR, outcome_for_sip

RING_TIMEOUT_CODES = frozenset({"deadline_exceeded"})  # the ringing_timeout passed without an answer
RATE_LIMIT_CODES = frozenset({"resource_exhausted"})  # Twirp's 429: too many calls or requests


def outcome_for_livekit(
    *, answered: bool, sip_code: int | None = None, twirp_code: str | None = None, canceled_by_us: bool = False
) -> str:
    """An answered call ends `answered` (the room finished, or the callee left it). A dial that failed:
    its SIP status through the SIP table (486 busy, 408/480/487 no_answer, 404/603 failed, 5xx
    provider_error); no SIP status: a ring timeout is no_answer, anything else (auth, trunk, limits) a
    provider_error. Our own hang-up while it rang (the ring timeout) is no_answer."""
    if answered:
        return ANSWERED
    if canceled_by_us:
        return NO_ANSWER
    if sip_code is not None:
        return outcome_for_sip(sip_code)
    if twirp_code in RING_TIMEOUT_CODES:
        return NO_ANSWER
    return PROVIDER_ERROR
