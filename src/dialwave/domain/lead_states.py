"""The lead state machine: a lead waits (queued, retry_pending), is dialed (dialing, in_call) and ends
completed, failed, skipped or cancelled."""

from __future__ import annotations

QUEUED, DIALING, IN_CALL, RETRY_PENDING = "queued", "dialing", "in_call", "retry_pending"
COMPLETED, FAILED, SKIPPED, CANCELLED = "completed", "failed", "skipped", "cancelled"
DUE = (QUEUED, RETRY_PENDING)  # waiting for their next attempt
IN_PROGRESS = (DIALING, IN_CALL)
FINAL = frozenset({COMPLETED, FAILED, SKIPPED, CANCELLED})

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({DIALING, SKIPPED, CANCELLED}),
    RETRY_PENDING: frozenset({DIALING, SKIPPED, CANCELLED}),
    # a claim that is released before its dial goes back where it came from
    DIALING: frozenset({QUEUED, RETRY_PENDING, IN_CALL, COMPLETED, FAILED, CANCELLED, SKIPPED}),
    IN_CALL: frozenset({RETRY_PENDING, COMPLETED, FAILED, CANCELLED, SKIPPED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
    SKIPPED: frozenset(),
    CANCELLED: frozenset(),
}


def can_move(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def counter(status: str) -> str:
    """The campaign counter a lead in `status` is counted under."""
    return "in_progress" if status in IN_PROGRESS else status
