"""A hosted platform's refusal: a provider error whose 429 (and a 503 with Retry-After) holds the number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dialwave.telephony.base import DEFAULT_RATE_LIMIT_HOLD
from dialwave.telephony.hosted import refused


def test_a_429_holds_for_its_retry_after_or_30_seconds() -> None:
    assert refused("Vapi", 429, "Too many", "120").retry_after == 120
    assert refused("Vapi", 429, "Too many", None).retry_after == DEFAULT_RATE_LIMIT_HOLD == 30
    assert refused("Vapi", 429, "Too many", "soon").retry_after == DEFAULT_RATE_LIMIT_HOLD
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    assert refused("Retell", 429, "Too many", later).retry_after == pytest.approx(300, abs=2)
    assert refused("Retell", 429, "Too many", "999999").retry_after == 3600  # capped at an hour


def test_a_503_holds_only_with_retry_after_and_other_refusals_never() -> None:
    assert refused("Retell", 503, "down", "15").retry_after == 15
    assert refused("Retell", 503, "down", None).retry_after is None
    error = refused("Vapi", 400, "assistantId should not be empty", "60")
    assert error.retry_after is None and error.message == "Vapi 400: assistantId should not be empty"
