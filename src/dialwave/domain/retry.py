"""What happens to a lead after an attempt: retry (when) or a final status. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from dialwave.domain.campaign_dialing import Retry, RetryRule
from dialwave.domain.outcomes import ANSWERED, OPTED_OUT, REACHED

COMPLETED, FAILED = "completed", "failed"
_NEVER_RETRIED = frozenset({ANSWERED, OPTED_OUT})


class Decision(NamedTuple):  # immutable, and a tuple: one is made per ended call
    status: str  # "retry_pending", "completed" or "failed"
    retry_at: datetime | None
    retries: dict[str, int]  # retries per reason, this one included
    why: str


@cache
def _minutes(n: int) -> timedelta:
    """A retry interval (config: 1 to 10,080 minutes), made once: timedelta(minutes=n) costs more than
    the rest of a decision."""
    return timedelta(minutes=n)


def final_status(reason: str) -> str:
    return COMPLETED if reason in REACHED else FAILED


def decide(retry: Retry, reason: str, attempts: int, retries: dict[str, int], ended_at: datetime) -> Decision:
    """`attempts` counts this one. The n-th retry for a reason waits the n-th interval (the last repeats)."""
    # (answered is no field of retry.on: not looked up, a miss costs the model's __getattr__ an exception)
    rule: RetryRule | None = None if reason in _NEVER_RETRIED else getattr(retry.on, reason, None)
    if rule is None:
        return Decision(final_status(reason), None, retries, "no retry for this outcome")
    done = retries.get(reason, 0)
    if not rule.enabled:
        return Decision(final_status(reason), None, retries, f"retry on {reason} is disabled")
    if done >= rule.max_retries:
        return Decision(final_status(reason), None, retries, f"{reason}: {done} of {rule.max_retries} retries used")
    if attempts >= retry.max_attempts:
        return Decision(final_status(reason), None, retries, f"max_attempts {retry.max_attempts} reached")
    wait = rule.interval_minutes[min(done, len(rule.interval_minutes) - 1)]
    after = {**retries, reason: done + 1}
    return Decision("retry_pending", ended_at + _minutes(wait), after, f"{reason} retry {done + 1}")


def callback(
    retry: Retry, attempts: int, retries: dict[str, int], requested: datetime, now: datetime
) -> Decision | None:
    """The person asked to be called back: one more attempt at `requested` (never in the past), counted
    against max_attempts; None when the attempts are used up."""
    if attempts >= retry.max_attempts:
        return None
    return Decision("retry_pending", max(requested, now), retries, f"callback requested for {requested.isoformat()}")
