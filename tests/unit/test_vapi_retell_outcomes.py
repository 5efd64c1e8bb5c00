"""The hosted platforms' end reasons: every value their official SDKs list maps to a dialwave outcome,
by the rules of docs/carriers.md."""

from __future__ import annotations

import typing

import pytest
from retell.types.phone_call_response import PhoneCallResponse
from vapi.types.server_message_end_of_call_report_ended_reason import ServerMessageEndOfCallReportEndedReason

from dialwave.domain.hosted_outcomes import (
    RETELL_OUTCOMES,
    VAPI_EXACT,
    conversion_of,
    outcome_for_retell,
    outcome_for_vapi,
)
from dialwave.domain.outcomes import CALL_OUTCOMES

VAPI_REASONS = [v for v in typing.get_args(typing.get_args(ServerMessageEndOfCallReportEndedReason)[0])]
RETELL_REASONS = list(
    typing.get_args(typing.get_args(PhoneCallResponse.model_fields["disconnection_reason"].annotation)[0])
)


def test_the_sdks_list_hundreds_of_vapi_reasons_and_dozens_of_retell_ones() -> None:
    assert len(VAPI_REASONS) > 500 and "customer-busy" in VAPI_REASONS
    assert len(RETELL_REASONS) > 30 and "dial_busy" in RETELL_REASONS


@pytest.mark.parametrize("reason", VAPI_REASONS)
def test_every_vapi_ended_reason_has_an_outcome(reason: str) -> None:
    outcome = outcome_for_vapi(reason, answered=True)
    assert outcome in CALL_OUTCOMES
    if reason in VAPI_EXACT:
        assert outcome == VAPI_EXACT[reason]
    elif reason.startswith(("pipeline-error-", "call.start.", "call.in-progress.error-vapifault", "assistant-request")):
        assert outcome == "provider_error"


def test_vapi_families() -> None:
    assert outcome_for_vapi("customer-busy", False) == "busy"
    assert outcome_for_vapi("customer-did-not-answer", False) == "no_answer"
    assert outcome_for_vapi("voicemail", True) == "voicemail"
    assert outcome_for_vapi("manually-canceled", False) == "no_answer"  # our end-call while ringing
    assert outcome_for_vapi("manually-canceled", True) == "answered"
    assert outcome_for_vapi("call.in-progress.error-providerfault-outbound-sip-503-service-unavailable", False) == (
        "provider_error"
    )
    assert outcome_for_vapi("call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable", False) == (
        "no_answer"
    )
    assert outcome_for_vapi("customer-ended-call-some-new-variant", True) == "answered"
    assert outcome_for_vapi(None, False) == outcome_for_vapi("brand-new", False) == "provider_error"


@pytest.mark.parametrize("reason", RETELL_REASONS)
def test_every_retell_disconnection_reason_is_in_the_table(reason: str) -> None:
    assert reason in RETELL_OUTCOMES or reason == "manual_stopped"
    assert outcome_for_retell(reason, answered=True) in CALL_OUTCOMES


def test_retell_rows() -> None:
    assert outcome_for_retell("dial_busy", False) == "busy"
    assert outcome_for_retell("dial_no_answer", False) == "no_answer"
    assert outcome_for_retell("dial_failed", False) == outcome_for_retell("user_declined", False) == "failed"
    assert outcome_for_retell("voicemail_reached", True) == "voicemail"
    assert outcome_for_retell("user_requested_dnc", True) == "answered"  # + opted_out on the event
    assert outcome_for_retell("manual_stopped", False) == "no_answer"
    assert outcome_for_retell("error_llm_websocket_lost_connection", True) == "provider_error"
    assert outcome_for_retell("something_new", False) == "provider_error"


@pytest.mark.parametrize(
    ("verdict", "conversion"),
    [
        ("true", True),
        ("Pass", True),
        (True, True),
        ("false", False),
        ("FAIL", False),
        (False, False),
        ("8", None),
        ("B", None),
        (None, None),
        ("The caller booked", None),
    ],
)
def test_conversion_from_the_analysis(verdict: object, conversion: bool | None) -> None:
    assert conversion_of(verdict) is conversion
