"""Abandoned calls: a person answered and the agent did not connect within the campaign's
`compliance.abandon_after_seconds` (47 CFR 64.1200(a)(7): within two seconds of the greeting; Ofcom's
persistent misuse policy likewise). Pure: the engine passes the instants the carrier reported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dialwave.domain.outcomes import INTERNAL_ERROR, PROVIDER_ERROR, VOICEMAIL

WINDOW = timedelta(days=30)  # the abandonment rate is measured over the last 30 days


def is_abandoned(
    answered_at: datetime | None,
    agent_connected_at: datetime | None,
    ended_at: datetime,
    outcome: str,
    after_seconds: float,
    *,
    machine: bool = False,
) -> bool:
    """A live answer (not a machine) whose agent connected more than `after_seconds` after the answer,
    or never while the person stayed longer than that, or never because our side ended the call (the
    agent's endpoint refused it: a provider or internal error). A person who hung up sooner was not
    abandoned."""
    if answered_at is None or machine or outcome == VOICEMAIL:
        return False
    if agent_connected_at is None and outcome in (PROVIDER_ERROR, INTERNAL_ERROR):
        return True
    connected = agent_connected_at if agent_connected_at is not None else ended_at
    return (connected - answered_at).total_seconds() > after_seconds


@dataclass(frozen=True)
class AbandonRate:
    """A campaign's abandoned calls and live answers over the last 30 days."""

    abandoned: int
    live_answers: int

    @property
    def rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    def exceeds(self, max_rate: float | None) -> bool:
        """Over the limit (the rule allows up to max_rate: 3 % is within a 3 % limit)."""
        return max_rate is not None and self.live_answers > 0 and self.rate > max_rate

    def pause_reason(self, max_rate: float) -> str:
        return (
            f"paused: {self.rate:.1%} of live answers abandoned over the last 30 days ({self.abandoned} of"
            f" {self.live_answers}), over compliance.max_abandon_rate {max_rate:.1%}; fix the agent's connect"
            " time, then resume"
        )


NO_ABANDONMENT = AbandonRate(0, 0)
