"""The carrier Protocol: originate a call, hang it up, a stream of call events (ringing, answered,
agent_connected: the agent's leg or media stream is up, ended with its outcome and SIP code), the
status of one call for reconciliation after a crash, close."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

from dialwave.records import record

# agent_connected: the person can hear the agent (SIP: the agent leg answered; Twilio: the media stream
# started; a carrier with no separate agent leg reports it with the answer). Abandonment is measured
# from "answered" to it.
EventKind = Literal["ringing", "answered", "agent_connected", "ended"]


MAX_RETRY_AFTER = 3600.0  # seconds: a longer (or absurd) Retry-After is capped


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """An HTTP Retry-After (delay seconds or an HTTP date) as seconds from `now`, within [0, 1 h]."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


DEFAULT_RATE_LIMIT_HOLD = 30.0  # seconds a hosted platform's 429 without Retry-After holds the number


def rate_limit_hold(status: int, retry_after: str | None, now: datetime) -> float | None:
    """How long a hosted platform's refusal holds the phone number: a 429's or 503's Retry-After, and a
    429 without one the default hold (its concurrency limit was reached)."""
    if status not in (429, 503):
        return None
    wait = retry_after_seconds(retry_after, now)
    return wait if wait is not None or status != 429 else DEFAULT_RATE_LIMIT_HOLD


@record
class DialRequest:
    call_id: str  # our idempotency key: one per (lead, attempt)
    organization_id: str
    campaign_id: str
    lead_id: str
    attempt: int
    from_number: str
    to_number: str
    caller_id: str  # phone_number_id
    at: datetime  # when the attempt starts (engine clock)
    ring_timeout_seconds: int
    machine_detection: bool
    system_prompt: str
    opening_message: str
    variables: dict[str, Any]
    agent_id: str | None
    agent_version: int | None
    carrier_settings: dict[str, Any] = field(default_factory=dict)  # the phone number's provider settings
    agent_sip_uri: str | None = None  # the agent runtime's SIP endpoint (SIP bridge)
    agent_stream_url: str | None = None  # the agent runtime's media stream (Twilio <Connect><Stream>)
    call_token: str | None = None  # for the runtime: reads this call's context (GET /v1/calls/{id}/context)
    machine_detection_timeout_seconds: int = 30  # how long detection may take before it gives up (unknown)
    voicemail_message: str | None = None  # leave this after the beep when a machine answers (None: hang up)


@record
class CallEvent:
    call_id: str
    kind: EventKind
    at: datetime
    provider_call_id: str | None = None
    answered_by: Literal["human", "machine"] | None = None
    outcome: str | None = None  # for "ended": answered, voicemail, busy, no_answer, failed, provider_error
    sip_code: int | None = None
    conversion: bool | None = None
    opted_out: bool = False  # the agent runtime's result came with the call (the simulated carrier)
    voicemail_left: bool | None = None  # a machine answered: was the voicemail message left (None: no machine)
    callback_at: datetime | None = None
    retry_after: float | None = None  # an "ended" refused by the platform's rate limit: hold the number (s)


@dataclass(frozen=True)
class CallStatus:
    state: Literal["ringing", "in_call", "ended"]
    provider_call_id: str | None
    events: tuple[CallEvent, ...]  # what happened so far, in order (lets the engine catch up)


class PushedEvents:
    """For carriers told of their calls from outside (callbacks, webhooks, dial tasks): events wait in
    `queue` until the engine polls them, and a call's track is dropped once its end is handed over, so a
    long-running process keeps no ended calls (a late repeat of the end finds nothing and changes nothing)."""

    tracks: dict[str, Any]
    queue: list[CallEvent]

    def poll(self, now: datetime) -> list[CallEvent]:
        out, self.queue = self.queue, []
        self._forget_ended(out)
        return out

    def _forget_ended(self, handed: list[CallEvent] | tuple[CallEvent, ...]) -> None:
        for event in handed:
            if event.kind == "ended":
                self.tracks.pop(event.call_id, None)

    def next_event_at(self) -> datetime | None:
        return None  # events come from outside, never on a schedule of ours


class Carrier(Protocol):
    name: str
    simulated: bool  # only a simulated carrier may run on a scaled or virtual clock

    async def originate(self, request: DialRequest) -> str:
        """Place the call; returns the provider's reference. Raises CarrierError."""
        ...

    async def hangup(self, call_id: str) -> None: ...

    def poll(self, now: datetime) -> list[CallEvent]:
        """Events that happened up to `now`, in time order, each once."""
        ...

    def next_event_at(self) -> datetime | None:
        """When the next event is due (simulated carriers), or None when events come from outside."""
        ...

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        """The carrier's view of one of our calls (by our id, its reference and the phone number's
        provider settings), or None if it never heard of it. Raises CarrierError if it cannot tell."""
        ...

    async def close(self) -> None:
        """Release what the carrier holds (sockets, HTTP sessions); calls in flight are not ended."""
        ...
