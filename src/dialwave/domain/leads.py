"""A lead as the dispatcher holds it between its claim and its dial: one typed shape from the
database row to the carrier's request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ClaimedLead:
    id: str
    phone_number: str  # E.164, normalised when the lead was added
    timezone: str | None  # the lead's own zone, over the one its number implies
    variables: dict[str, Any]
    agent_overrides: dict[str, Any] | None
    status: str  # before the claim: queued or retry_pending
    attempts: int  # attempts made before this one
    retries: dict[str, int]  # retries used, per outcome
    next_attempt_at: datetime | None
    region: str | None = None  # ISO 3166-2 (US-TX): pins the calling rules over the area code
