"""What the hosted voice-agent platforms (Vapi, Retell) share: the platform places the call and runs the
agent; dialwave learns what happens from the platform's webhooks (POST /v1/carriers/{name}/events/{call_id},
authenticated there) and, when they are late or lost, from the platform's call resource. `advance` turns
either into call events, never moving a call backwards; a refusal becomes a CarrierError whose 429 holds
the phone number (Retry-After, else base.DEFAULT_RATE_LIMIT_HOLD seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

import httpx

from dialwave.clock import Clock
from dialwave.domain.outcomes import ANSWERED, VOICEMAIL
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest, PushedEvents, rate_limit_hold

State = Literal["queued", "ringing", "answered", "ended"]
REACHED = {ANSWERED, VOICEMAIL}  # outcomes that mean someone (or something) picked up
SdkClient = TypeVar("SdkClient")


@dataclass
class Track:
    provider_id: str
    settings: dict[str, Any]
    started: datetime
    rang: bool = False
    answered: bool = False
    ended: bool = False
    hung_up: bool = False  # we asked the platform to end it
    control_url: str | None = None  # Vapi: the live call's control URL (ends it)
    # the campaign's machine detection as the platform was asked: leave the message (True), hang up
    # (False), or nothing asked (None: the agent's own setting, and whether a message was left is unknown)
    leaves_message: bool | None = None


@dataclass(frozen=True)
class Ending:
    """How a call ended, as the platform reported it."""

    outcome: str
    conversion: bool | None = None
    opted_out: bool = False
    talk_seconds: float | None = None  # the platform's own count, used when no answer event came first


def leaves_message(request: DialRequest) -> bool | None:
    """What the platform was asked to do on a machine: leave the campaign's message (True), hang up
    (False), or nothing (None: machine detection is off for the campaign)."""
    if not request.machine_detection:
        return None
    return bool(request.voicemail_message)


def metadata(request: DialRequest) -> dict[str, Any]:
    """Our ids and the call's token on the platform's call (Vapi assistantOverrides.metadata, Retell
    metadata): the webhooks carry them back, and the agent's tools read them."""
    out: dict[str, Any] = {
        "dialwave_call_id": request.call_id,
        "dialwave_campaign_id": request.campaign_id,
        "dialwave_lead_id": request.lead_id,
        "dialwave_attempt": request.attempt,
    }
    if request.call_token:  # a tool reads GET /v1/calls/{id}/context with it
        out["dialwave_token"] = request.call_token
    return out


def refused(platform: str, status: int | None, message: str, retry_after: str | None) -> CarrierError:
    """A refused request is a provider error for the attempt; a 429 holds the number (its Retry-After, else
    the default hold), and so does a 503 with a Retry-After (base.rate_limit_hold)."""
    text = f"{platform} {status}: {message}"[:240]
    wait = rate_limit_hold(status, retry_after, datetime.now(UTC)) if status is not None else None
    return CarrierError(text, retry_after=wait)


class HostedCarrier(PushedEvents, Generic[SdkClient]):
    name = "hosted"
    label = "hosted"  # the platform's name in messages
    simulated = False

    def __init__(self, clock: Clock, public_url: str, api_base: str) -> None:
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base.rstrip("/")
        self.tracks: dict[str, Track] = {}
        self.queue: list[CallEvent] = []
        self._http: httpx.AsyncClient | None = None
        self._clients: dict[str, SdkClient] = {}

    def http(self) -> httpx.AsyncClient:
        """One connection pool for every API key's SDK client (and any plain request)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        return self._http

    def client(self, settings: dict[str, Any]) -> SdkClient:
        """The platform's SDK client for the phone number's API key (one per key, kept)."""
        key = (settings.get(self.name) or {}).get("api_key")
        if not key:
            raise CarrierError(f"the phone number has no {self.label} api_key")
        if key not in self._clients:
            self._clients[key] = self.new_client(key, self.http())
        return self._clients[key]

    def new_client(self, api_key: str, http: httpx.AsyncClient) -> SdkClient:
        raise NotImplementedError

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._clients.clear()

    def callback_url(self, call_id: str) -> str:
        return f"{self.public_url}/v1/carriers/{self.name}/events/{call_id}"

    def known_id(self, call_id: str) -> str | None:
        track = self.tracks.get(call_id)
        return track.provider_id if track is not None else None

    def advance(self, call_id: str, provider_id: str, state: State, ending: Ending | None = None) -> list[CallEvent]:
        """The platform says the call is at `state`: the events this adds (none for a repeat, an older
        state arriving late, or anything after the end)."""
        now = self.clock.now()
        track = self.tracks.get(call_id)
        if track is None:  # a webhook for a call adopted after a restart
            track = self.tracks[call_id] = Track(provider_id, {}, now)
        if track.ended:
            return []
        out: list[CallEvent] = []
        if state == "ringing" and not track.rang and not track.answered:
            track.rang = True
            out.append(CallEvent(call_id, "ringing", now, provider_id))
        reached = state == "ended" and ending is not None and ending.outcome in REACHED
        if (state == "answered" or reached) and not track.answered:
            track.answered = True
            at = now
            if state == "ended" and ending is not None and ending.talk_seconds:
                at = max(track.started, now - timedelta(seconds=ending.talk_seconds))
            machine = ending is not None and ending.outcome == VOICEMAIL
            out.append(CallEvent(call_id, "answered", at, provider_id, answered_by="machine" if machine else "human"))
            # the platform is the agent: the callee hears it from the answer on
            out.append(CallEvent(call_id, "agent_connected", at, provider_id))
        if state == "ended" and ending is not None:
            track.ended = True
            out.append(
                CallEvent(
                    call_id,
                    "ended",
                    now,
                    provider_id,
                    outcome=ending.outcome,
                    conversion=ending.conversion,
                    opted_out=ending.opted_out,
                    voicemail_left=track.leaves_message if ending.outcome == VOICEMAIL else None,
                )
            )
        self.queue.extend(out)
        return out

    def as_status(self, call_id: str, provider_id: str, state: State, ending: Ending | None) -> CallStatus:
        """The platform's view of a call (its call resource) as a status: what it adds is handed over here."""
        events = tuple(self.advance(call_id, provider_id, state, ending))
        self.queue = [e for e in self.queue if e not in events]
        self._forget_ended(events)
        kind: Literal["ringing", "in_call", "ended"] = (
            "ended" if state == "ended" else "in_call" if state == "answered" else "ringing"
        )
        return CallStatus(kind, provider_id, events)
