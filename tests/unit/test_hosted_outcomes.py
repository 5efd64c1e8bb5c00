"""The LiveKit and Telnyx outcome tables (docs/carriers.md), row by row."""

from __future__ import annotations

import pytest

from dialwave.domain.livekit_outcomes import outcome_for_livekit
from dialwave.domain.telnyx_outcomes import outcome_for_telnyx, sip_code_of


@pytest.mark.parametrize(
    ("kwargs", "outcome"),
    [
        ({"answered": True}, "answered"),
        ({"answered": False, "sip_code": 486, "twirp_code": "unavailable"}, "busy"),
        ({"answered": False, "sip_code": 600}, "busy"),
        ({"answered": False, "sip_code": 480}, "no_answer"),
        ({"answered": False, "sip_code": 408}, "no_answer"),
        ({"answered": False, "sip_code": 404}, "failed"),
        ({"answered": False, "sip_code": 603}, "failed"),
        ({"answered": False, "sip_code": 503}, "provider_error"),
        ({"answered": False, "twirp_code": "deadline_exceeded"}, "no_answer"),
        ({"answered": False, "sip_code": 487, "canceled_by_us": True}, "no_answer"),
        ({"answered": False, "twirp_code": "unavailable", "canceled_by_us": True}, "no_answer"),
        ({"answered": False, "twirp_code": "resource_exhausted"}, "provider_error"),
        ({"answered": False, "twirp_code": "unauthenticated"}, "provider_error"),
        ({"answered": False, "twirp_code": "not_found"}, "provider_error"),
    ],
)
def test_livekit(kwargs: dict[str, object], outcome: str) -> None:
    assert outcome_for_livekit(**kwargs) == outcome  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cause", "sip", "answered", "machine", "outcome"),
    [
        ("normal_clearing", "200", True, False, "answered"),
        ("time_limit", None, True, False, "answered"),
        ("normal_clearing", None, True, True, "voicemail"),
        ("user_busy", "486", False, False, "busy"),
        ("timeout", None, False, False, "no_answer"),
        ("no_answer", "480", False, False, "no_answer"),
        ("originator_cancel", "487", False, False, "no_answer"),
        ("normal_clearing", None, False, False, "no_answer"),
        ("call_rejected", "603", False, False, "failed"),
        ("call_rejected", "486", False, False, "busy"),
        ("not_found", "404", False, False, "failed"),
        ("unspecified", "503", False, False, "provider_error"),
        ("unspecified", "unspecified", False, False, "failed"),
        (None, None, False, False, "failed"),
    ],
)
def test_telnyx(cause: str | None, sip: str | None, answered: bool, machine: bool, outcome: str) -> None:
    assert outcome_for_telnyx(cause, sip_code_of(sip), answered, machine) == outcome


def test_a_sip_hangup_cause_is_a_code_or_nothing() -> None:
    assert [sip_code_of(v) for v in ("486", "unspecified", "", None, "99", "700", "\uff16\uff10\uff13")] == [
        486,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
