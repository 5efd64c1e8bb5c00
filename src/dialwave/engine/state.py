"""The dispatcher's in-memory state, as plain data: running campaigns, claimed leads (reservations),
calls in flight, the load of each caller id, and a pre-dial hook's verdict."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from dialwave.domain.caller_ids import Caller
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes
from dialwave.domain.leads import ClaimedLead
from dialwave.domain.pacing import Pacer


@dataclass(frozen=True)
class Verdict:
    """A pre-dial hook's answer about one attempt."""

    allow: bool
    reason: str | None = None
    error: str | None = None  # the hook could not answer (its on_error decided `allow`)


@dataclass
class CallerLoad:
    """Per caller id: calls in flight or slotted, and its own pace (max_calls_per_second)."""

    busy: int = 0
    pacer: Pacer | None = None


@dataclass
class CampaignState:
    id: str
    org_id: str
    version: int
    status: str
    config: CampaignConfig
    times: CampaignTimes
    agent: dict[str, Any]  # the pinned agent snapshot
    agent_version: int | None
    callers: list[Caller]
    numbers: dict[str, RowMapping]  # phone_number_id -> row
    pacer: Pacer
    in_flight: int = 0
    slotted: int = 0  # reservations with a start slot (in the dispatcher's heap)
    waiting: deque[Reservation] = field(default_factory=deque)  # claimed, waiting for capacity and a slot
    next_due: datetime | None = None
    due_known: bool = False
    backlog: bool = False  # the last claim found more due leads than it took
    turn: int = 0  # round-robin counter
    stale: bool = False  # invalidated: its reservations must not start
    carrier_failures: int = 0  # calls in a row that ended as provider_error (the circuit breaker)
    claim_failures: int = 0  # claims in a row that failed (a failure of ours: it backs off, then pauses)
    org_twilio: dict[str, str] | None = None  # the organization's Twilio credentials, for numbers without
    cap_wait: datetime | None = None  # a grant found no room across workers: ask again from then
    replan_from: datetime | None = None  # an edit asked for waiting leads to be brought forward (engine/replan.py)
    target_of: tuple[Any, int] | None = None  # (engine settings, claims.target for them), remembered

    @property
    def room(self) -> int:
        """Calls that may still be given a slot without ever exceeding max_concurrency."""
        return self.config.pacing.max_concurrency - self.in_flight - self.slotted

    def provider(self, caller_id: str) -> str:
        row = self.numbers.get(caller_id)
        return str(row["provider"]) if row is not None else "simulated"

    def caller_limit(self, caller_id: str) -> int | None:
        row = self.numbers.get(caller_id)
        limit = row["config"].get("max_concurrency") if row is not None else None
        return int(limit) if limit is not None else None

    @property
    def max_call_seconds(self) -> int:
        """The longest an answered call may last: the campaign's override, else the agent's."""
        override = self.config.agent_overrides.max_call_duration_seconds
        return override or int(self.agent.get("max_call_duration_seconds") or 600)

    @property
    def held(self) -> int:
        return self.slotted + len(self.waiting)

    @property
    def replan_waiting(self) -> bool:
        """A re-plan batch is waiting (engine/replan.py), for a campaign whose state is current."""
        return self.replan_from is not None and not self.stale


@dataclass(slots=True)
class Reservation:
    """A claimed lead, from the claim to its dial (slotted: the claim makes one per lead it takes, and
    every field is set in its one constructor call)."""

    slot: datetime
    call_id: str
    campaign_id: str
    org_id: str
    lead: ClaimedLead
    attempt: int
    caller: Caller
    prior_status: str
    claimed_at: datetime | None = None
    recent: list[datetime] = field(default_factory=list)  # attempts to this number in the cap windows before the claim
    hook: asyncio.Task[Verdict] | None = None  # the pre-dial hook's answer, asked when the slot was given
    consent_id: str | None = None  # the consent that allows the dial, when the campaign requires one
    consent_expires: datetime | None = None  # ...and when it expires (None: never)
    decision: dict[str, Any] | None = None  # what allowed the dial (the audit trail), written with the call row

    def __lt__(self, other: Reservation) -> bool:
        return (self.slot, self.call_id) < (other.slot, other.call_id)


@dataclass
class Live:
    """A call between dial and hang-up."""

    call_id: str
    campaign_id: str
    org_id: str
    lead_id: str
    to_number: str
    lead_timezone: str | None
    attempt: int
    caller_id: str
    started_at: datetime
    retries: dict[str, int]
    answered_at: datetime | None = None
    answered_by: str | None = None  # human or machine, as the carrier said (None: not known, e.g. recovered)
    agent_connected_at: datetime | None = None  # the person could hear the agent from then on
    provider_call_id: str | None = None
    ring_timeout: timedelta = timedelta(seconds=30)
    from_number: str = ""
    hung_up: bool = False  # we asked the carrier to end it (its "ended" event is awaited)
    conversion: bool | None = None  # reported by the agent runtime's result before the hang-up
    callback_at: datetime | None = None  # ... and a callback the person asked for
    call_token: str | None = None  # handed to the carrier (and pushed with the context) for the runtime
    lead_region: str | None = None  # the lead's ISO 3166-2 region: its calling rules

    @property
    def lead_status(self) -> str:
        return "in_call" if self.answered_at is not None else "dialing"
