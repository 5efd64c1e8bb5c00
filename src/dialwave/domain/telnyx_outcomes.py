"""Telnyx Call Control: how a call's `call.hangup` (hangup_cause, sip_hangup_cause) and answering
machine detection map to an outcome."""

from __future__ import annotations

from dialwave.domain.outcomes import ANSWERED, BUSY, FAILED, NO_ANSWER, VOICEMAIL, outcome_for_sip

# call.machine.detection.ended (result) and call.machine.premium.detection.ended (result)
TELNYX_MACHINE = frozenset({"machine", "fax_detected"})
TELNYX_HUMAN = frozenset({"human", "human_residence", "human_business", "not_sure", "silence"})
NOT_ANSWERED = frozenset({"timeout", "no_answer", "originator_cancel", "normal_clearing"})


def outcome_for_telnyx(hangup_cause: str | None, sip_code: int | None, answered: bool, machine: bool) -> str:
    """After `call.answered`: answered, or voicemail when detection said machine (or fax). Before it:
    user_busy is busy; timeout, no_answer, our cancel (originator_cancel) or a hang-up while ringing
    is no_answer; call_rejected, not_found and unspecified go through the SIP table with
    sip_hangup_cause (603 failed, 503 provider_error...), failed without one."""
    if answered:
        return VOICEMAIL if machine else ANSWERED
    if hangup_cause == "user_busy":
        return BUSY
    if hangup_cause in NOT_ANSWERED:
        return NO_ANSWER
    if sip_code is not None:
        return outcome_for_sip(sip_code)
    return FAILED


def sip_code_of(value: str | None) -> int | None:
    """sip_hangup_cause is a SIP response code as text, or `unspecified`."""
    return int(value) if value and value.isascii() and value.isdigit() and 100 <= int(value) < 700 else None
