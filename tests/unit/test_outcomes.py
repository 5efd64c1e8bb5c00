"""Answered calls are classified by talk time and reported conversion, and SIP final codes map to call outcomes."""

from __future__ import annotations

from dialwave.domain.outcomes import classify, outcome_for_sip


def test_answered_calls_are_classified_by_duration_and_conversion_and_sip_codes_map_to_outcomes() -> None:
    assert classify("answered", 4, True, 10).outcome == "short_duration"
    assert classify("answered", 40, False, 10).reason == "no_conversion"
    assert classify("answered", 40, None, 10).reason == "answered"
    assert [outcome_for_sip(c) for c in (486, 487, 404, 603, 503, None, 200)] == [
        "busy",
        "no_answer",
        "failed",
        "failed",
        "provider_error",
        "provider_error",
        "answered",
    ]
