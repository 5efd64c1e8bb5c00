"""A call's outcome completes, fails or retries its lead, waiting the configured intervals until a cap is reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialwave.domain.campaign_dialing import Retry
from dialwave.domain.retry import decide


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_retry_intervals_repeat_the_last_and_stop_at_the_caps() -> None:
    retry = Retry.model_validate({"max_attempts": 5, "on": {"busy": {"max_retries": 3, "interval_minutes": [10, 30]}}})
    t = utc(2026, 3, 2, 12, 0)
    first = decide(retry, "busy", 1, {}, t)
    assert first.status == "retry_pending" and first.retry_at == t + timedelta(minutes=10)
    second = decide(retry, "busy", 2, first.retries, t)
    assert second.retry_at == t + timedelta(minutes=30)
    third = decide(retry, "busy", 3, second.retries, t)
    assert third.retry_at == t + timedelta(minutes=30)
    assert decide(retry, "busy", 4, third.retries, t).status == "failed"
    capped = Retry.model_validate({"max_attempts": 2, "on": {"busy": {"max_retries": 5}}})
    assert decide(capped, "busy", 2, {"busy": 1}, t).status == "failed"
    assert decide(retry, "answered", 1, {}, t).status == "completed"
    assert decide(retry, "failed", 1, {}, t).status == "failed"  # failed: retries disabled by default
