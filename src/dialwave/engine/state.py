"""The dispatcher's in-memory state: running campaigns, reservations, calls in flight, and the buffer
of writes that the next group commit flushes."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping

from dialwave.domain.caller_ids import Caller
from dialwave.domain.campaign_config import CampaignConfig
from dialwave.domain.dialable import CampaignTimes
from dialwave.domain.pacing import Pacer

if TYPE_CHECKING:
    from dialwave.engine.predial import Verdict


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
    org_twilio: dict[str, str] | None = None  # the organization's Twilio credentials, for numbers without

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


@dataclass
class Reservation:
    slot: datetime
    call_id: str
    campaign_id: str
    org_id: str
    lead: dict[str, Any]  # the claimed lead row
    attempt: int
    caller: Caller
    prior_status: str
    claimed_at: datetime | None = None
    recent: list[datetime] = field(default_factory=list)  # attempts to this number in the 24 h before the claim
    hook: asyncio.Task[Verdict] | None = None  # the pre-dial hook's answer, asked when the slot was given

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
    provider_call_id: str | None = None
    ring_timeout: timedelta = timedelta(seconds=30)
    from_number: str = ""
    hung_up: bool = False  # we asked the carrier to end it (its "ended" event is awaited)
    conversion: bool | None = None  # reported by the agent runtime's result before the hang-up
    callback_at: datetime | None = None  # ... and a callback the person asked for
    call_token: str | None = None  # handed to the carrier (and pushed with the context) for the runtime

    @property
    def lead_status(self) -> str:
        return "in_call" if self.answered_at is not None else "dialing"


@dataclass
class Writes:
    """State changes waiting for the next group commit, merged per row."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    released_calls: list[str] = field(default_factory=list)
    dnc: list[tuple[str, str, str, str | None, str]] = field(
        default_factory=list
    )  # org, number, reason, campaign, source
    events: list[dict[str, Any]] = field(default_factory=list)  # outbox rows, committed with the changes
    finished: set[str] = field(default_factory=set)  # campaigns whose leads reached a final status
    # Calls ended without a runtime result known here (call -> organization): one posted to another
    # process while the call was up is looked up in the commit that ends the call.
    unresulted: dict[str, str] = field(default_factory=dict)

    def call(self, call_id: str, **values: Any) -> None:
        self.calls.setdefault(call_id, {}).update(values)

    def lead(self, lead_id: str, **values: Any) -> None:
        self.leads.setdefault(lead_id, {}).update(values)

    def move(self, campaign_id: str, old: str | None, new: str | None) -> None:
        counter = self.counts.setdefault(campaign_id, Counter())
        if old:
            counter[old] -= 1
        if new:
            counter[new] += 1

    def __len__(self) -> int:
        return len(self.calls) + len(self.leads) + len(self.released_calls) + len(self.dnc) + len(self.events)

    @property
    def empty(self) -> bool:
        return not (self.calls or self.leads or self.released_calls or self.dnc or self.counts or self.events)
