"""The simulated carrier: seeded random outcomes from a model, on the engine's clock.

The model is a phone number's `simulated` settings (the same keys as a `simulate` scenario's
`carrier`): outcome rates, ring and talk time ranges, conversion rate, and optional scripted outcomes
per called number (`scripted: {"+1...": ["busy", "answered"]}`: the n-th attempt gets the n-th entry,
the last repeats). Every draw comes from a generator seeded by (seed, called number, attempt), so a
scenario replays identically whatever order the engine dials in."""

from __future__ import annotations

import _random
import heapq
import random
from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime, timedelta
from hashlib import sha512
from itertools import accumulate
from typing import Any

from dialwave.clock import Clock
from dialwave.domain.resources import SimulatedSettings
from dialwave.errors import CarrierError
from dialwave.telephony.base import CallEvent, CallStatus, DialRequest

SIP_CODES = {"answered": 200, "voicemail": 200, "busy": 486, "no_answer": 487, "failed": 404}


def outcome_table(model: SimulatedSettings) -> tuple[tuple[str, ...], list[float]]:
    """The model's outcome names and cumulative weights, as `random.choices(names, weights)` computes
    them on every call (itertools.accumulate, in the same order): the same draw for the same generator."""
    names = tuple(model.outcomes)
    return names, list(accumulate(model.outcomes[name] for name in names))


class _Model:
    """A validated model and its outcome table."""

    def __init__(self, settings: SimulatedSettings) -> None:
        self.settings = settings
        self.names, self.cumulative = outcome_table(settings)
        self.total = self.cumulative[-1] + 0.0 if self.cumulative else 0.0

    def draw(self, uniform: float) -> str:
        """`random.choices(names, cum_weights=cumulative)[0]` given that generator's next `random()`:
        the same arithmetic (random.py), without its checks and list on every call."""
        return self.names[bisect_right(self.cumulative, uniform * self.total, 0, len(self.names) - 1)]


class _Call:
    """One placed call: its planned events and how many were handed over."""

    __slots__ = ("delivered", "ended", "events", "request")

    def __init__(self, request: DialRequest, events: list[CallEvent]) -> None:
        self.request = request
        self.events = events
        self.delivered = 0
        self.ended = False

    def stands(self, index: int) -> bool:
        """Whether its event `index` is the next to hand over (not superseded by a hangup)."""
        return index == self.delivered and not self.ended and index < len(self.events)


def _seeded(generator: _random.Random, text: str) -> _random.Random:
    """`generator` put in the state `random.Random(text)` starts in: random.py's `seed` of a str
    (version 2, CPython 3.11) is the integer of the text's UTF-8 bytes followed by their SHA-512 digest
    (big-endian), handed to this C generator's seed. Seeding it here skips random.py's layers and the
    allocation of a fresh 2.5 KB generator per call; the Mersenne Twister's state is the same."""
    data = text.encode()
    generator.seed(int.from_bytes(data + sha512(data).digest(), "big"))
    return generator


def _uniform(draw: Callable[[], float], bounds: tuple[float, float]) -> float:
    """`random.uniform(*bounds)` (random.py: `a + (b - a) * random()`) given its generator's `random`."""
    low, high = bounds
    return low + (high - low) * draw()


def _ended(request: DialRequest, ref: str, seconds: float, outcome: str, **details: Any) -> CallEvent:
    """The call's end `seconds` after its start, with the outcome's SIP code."""
    at = request.at + timedelta(seconds=seconds)
    return CallEvent(
        request.call_id, "ended", at, ref, outcome=outcome, sip_code=SIP_CODES.get(outcome, 503), **details
    )


class SimulatedCarrier:
    name = "simulated"
    simulated = True

    def __init__(self, clock: Clock, default: SimulatedSettings | None = None, *, fail_originate: float = 0.0) -> None:
        self.clock = clock
        self.default = default or SimulatedSettings()
        self.fail_originate = fail_originate  # share of originate() calls that raise (provider outage)
        self._calls: dict[str, _Call] = {}
        self._heap: list[tuple[datetime, int, _Call, int]] = []  # (at, seq, call, event index)
        self._seq = 0
        self.originated = 0
        self.owners: dict[str, SimulatedCarrierView] = {}
        self._models: dict[int, tuple[Any, _Model]] = {}  # id of a number's settings -> (them, their model)
        self._default: _Model | None = None
        self._draws = _random.Random()  # re-seeded for each call's draws (_seeded)
        self._agent = _random.Random()  # ... and for its agent-connect delay

    def _model(self, request: DialRequest) -> _Model:
        """The number's model, validated once per settings object (a phone number's settings are the same
        object for each of its calls until the engine re-reads it), with its outcome table."""
        raw = request.carrier_settings.get("simulated") if request.carrier_settings else None
        if not raw:
            if self._default is None or self._default.settings is not self.default:
                self._default = _Model(self.default)
            return self._default
        found = self._models.get(id(raw))
        if found is None or found[0] is not raw:
            if len(self._models) >= 1024:
                self._models.clear()
            found = self._models[id(raw)] = (raw, _Model(SimulatedSettings.model_validate(raw)))
        return found[1]

    def _plan(self, request: DialRequest, prepared: _Model) -> list[CallEvent]:
        model = prepared.settings
        draw = _seeded(self._draws, f"{model.seed}:{request.to_number}:{request.attempt}").random
        script = model.scripted.get(request.to_number) if model.scripted else None
        outcome = script[min(request.attempt, len(script)) - 1] if script else prepared.draw(draw())
        ring = _uniform(draw, model.ring_seconds)
        talk = _uniform(draw, model.talk_seconds)
        converted = draw() < model.conversion_rate
        opted_out = model.opt_out_rate > 0 and draw() < model.opt_out_rate
        callback_at = None
        if model.callback_rate > 0 and not opted_out and draw() < model.callback_rate:
            callback_at = request.at + timedelta(hours=_uniform(draw, model.callback_after_hours))
        ref = f"sim-{request.call_id}"
        ringing = CallEvent(request.call_id, "ringing", request.at + timedelta(seconds=min(ring, 0.5)), ref)
        timeout = float(request.ring_timeout_seconds)
        if outcome in ("answered", "voicemail") and ring >= timeout:
            return [ringing, _ended(request, ref, timeout, "no_answer")]
        if outcome == "answered":
            details = {"conversion": converted, "opted_out": opted_out, "callback_at": callback_at}
            return [
                ringing,
                *self._person(request, model, ref, ring, _ended(request, ref, ring + talk, "answered", **details)),
            ]
        if outcome == "voicemail":
            return [ringing, *self._machine(request, model, ref, draw, ring, talk)]
        if outcome == "no_answer":
            return [ringing, _ended(request, ref, timeout, "no_answer")]
        if outcome == "busy":
            return [ringing, _ended(request, ref, min(ring, 3.0), "busy")]
        return [_ended(request, ref, min(ring, 1.0), "failed")]

    def _person(
        self, request: DialRequest, model: SimulatedSettings, ref: str, ring: float, ended: CallEvent
    ) -> list[CallEvent]:
        """A person answers `ring` seconds in; the agent connects `agent_connect_seconds` later, unless
        the call ends first. The delay has its own generator: the outcome draws stay what they were
        before it existed."""
        agent = _seeded(self._agent, f"{model.seed}:{request.to_number}:{request.attempt}:agent")
        answer = request.at + timedelta(seconds=ring)
        connected = answer + timedelta(seconds=_uniform(agent.random, model.agent_connect_seconds))
        answered = CallEvent(request.call_id, "answered", answer, ref, answered_by="human")
        if connected >= ended.at:  # the person hung up before the agent came on
            return [answered, ended]
        return [answered, CallEvent(request.call_id, "agent_connected", connected, ref), ended]

    def _machine(
        self,
        request: DialRequest,
        model: SimulatedSettings,
        ref: str,
        draw: Callable[[], float],
        ring: float,
        talk: float,
    ) -> list[CallEvent]:
        """A machine answers. Without detection, the call runs its talk time and ends as voicemail.
        With detection: hanging up needs the machine recognised (`machine_detect_seconds`); leaving a
        message needs the greeting's end, the beep (`greeting_seconds`), then the message spoken (about
        2.5 words a second). Detection that needs longer than the campaign's timeout gives up: the call
        goes on as if a person had answered and ends as an answered call."""
        answered = CallEvent(
            request.call_id, "answered", request.at + timedelta(seconds=ring), ref, answered_by="machine"
        )
        if not request.machine_detection:
            return [answered, _ended(request, ref, ring + talk, "voicemail", voicemail_left=False)]
        detect = _uniform(draw, model.machine_detect_seconds)
        greeting = max(detect, _uniform(draw, model.greeting_seconds))
        needed = greeting if request.voicemail_message else detect
        if needed > request.machine_detection_timeout_seconds:
            return self._person(request, model, ref, ring, _ended(request, ref, ring + talk, "answered"))
        if request.voicemail_message:
            spoken = max(2.0, len(request.voicemail_message.split()) / 2.5)
            return [answered, _ended(request, ref, ring + greeting + spoken, "voicemail", voicemail_left=True)]
        return [answered, _ended(request, ref, ring + detect, "voicemail", voicemail_left=False)]

    async def originate(self, request: DialRequest) -> str:
        if request.call_id in self._calls:
            return f"sim-{request.call_id}"  # idempotent: the same attempt is never placed twice
        model = self._model(request)
        if self.fail_originate and random.Random(f"fail:{request.call_id}").random() < self.fail_originate:
            raise CarrierError("simulated carrier outage")
        call = self._calls[request.call_id] = _Call(request, self._plan(request, model))
        self.originated += 1
        heap, seq = self._heap, self._seq
        for i, event in enumerate(call.events):
            seq += 1
            heapq.heappush(heap, (event.at, seq, call, i))
        self._seq = seq
        return f"sim-{request.call_id}"

    async def hangup(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.ended:
            return
        now = self.clock.now()
        kept = [e for e in call.events[: call.delivered]]
        answered = any(e.kind == "answered" for e in kept)
        outcome = "answered" if answered else "no_answer"
        ref = f"sim-{call_id}"
        call.events = [*kept, CallEvent(call_id, "ended", now, ref, outcome=outcome, sip_code=200 if answered else 487)]
        self._seq += 1
        heapq.heappush(self._heap, (now, self._seq, call, len(call.events) - 1))

    def poll(self, now: datetime) -> list[CallEvent]:
        out: list[CallEvent] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, call, index = heapq.heappop(heap)
            if not call.stands(index):
                continue  # superseded by a hangup
            event = call.events[index]
            call.delivered += 1
            call.ended = event.kind == "ended"
            out.append(event)
        return out

    async def close(self) -> None:
        """Nothing to release: the simulated calls live in this object."""

    def next_event_at(self) -> datetime | None:
        heap = self._heap
        while heap:
            at, _, call, index = heap[0]
            if call.stands(index):
                return at
            heapq.heappop(heap)
        return None

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        call = self._calls.get(call_id)
        if call is None:
            return None
        now = self.clock.now()
        happened = tuple(e for e in call.events if e.at <= now)
        state = (
            "ended"
            if any(e.kind == "ended" for e in happened)
            else ("in_call" if any(e.kind == "answered" for e in happened) else "ringing")
        )
        return CallStatus(state, f"sim-{call_id}", happened)  # type: ignore[arg-type]

    def view(self) -> SimulatedCarrierView:
        """A handle for one of several dispatchers sharing this carrier (like workers sharing a real
        one): each receives the events of the calls it placed or reconciled."""
        return SimulatedCarrierView(self)

    def route(self, now: datetime) -> None:
        for event in self.poll(now):
            owner = self.owners.get(event.call_id)
            if owner is not None:
                owner.inbox.append(event)

    def forget(self) -> None:
        """Drop every call (a carrier that lost its state, for recovery tests)."""
        self._calls.clear()
        self._heap.clear()


class SimulatedCarrierView:
    name = "simulated"
    simulated = True

    def __init__(self, carrier: SimulatedCarrier) -> None:
        self.carrier = carrier
        self.inbox: list[CallEvent] = []

    async def originate(self, request: DialRequest) -> str:
        ref = await self.carrier.originate(request)
        self.carrier.owners[request.call_id] = self
        return ref

    async def hangup(self, call_id: str) -> None:
        await self.carrier.hangup(call_id)

    def poll(self, now: datetime) -> list[CallEvent]:
        self.carrier.route(now)
        out, self.inbox = self.inbox, []
        return out

    def next_event_at(self) -> datetime | None:
        return self.carrier.next_event_at()

    async def status(
        self, call_id: str, provider_call_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> CallStatus | None:
        found = await self.carrier.status(call_id)
        if found is not None:
            self.carrier.owners[call_id] = self  # later events of the call come here
        return found
