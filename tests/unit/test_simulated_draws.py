"""The simulated carrier draws exactly what it drew before it validated each model once and kept its
cumulative outcome weights: the same outcome and the same generator state after it, so every later
draw (ring, talk, conversion, ...) is the same for a seed."""

from __future__ import annotations

import _random
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.clock import VirtualClock
from dialwave.domain.resources import SimOutcome, SimulatedSettings
from dialwave.telephony.base import CallEvent, DialRequest
from dialwave.telephony.simulated import SIP_CODES, SimulatedCarrier, _Model, _seeded, outcome_table

NAMES = list(get_args(SimOutcome))
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
weights = st.dictionaries(st.sampled_from(NAMES), st.floats(0, 1), min_size=1).filter(lambda d: sum(d.values()) > 0)


@settings(max_examples=400, deadline=None)
@given(outcomes=weights, seed=st.integers(0, 2**31 - 1), number=st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True))
def test_cumulative_weights_draw_what_the_weights_drew(outcomes: dict[str, float], seed: int, number: str) -> None:
    model = SimulatedSettings(seed=seed, outcomes=outcomes)  # type: ignore[arg-type]
    names, cumulative = outcome_table(model)
    for attempt in range(1, 4):
        before = random.Random(f"{model.seed}:{number}:{attempt}")  # the pre-change draw
        old_names, old_weights = zip(*model.outcomes.items(), strict=True)
        now = random.Random(f"{model.seed}:{number}:{attempt}")
        assert now.choices(names, cum_weights=cumulative)[0] == before.choices(old_names, old_weights)[0]
        assert now.random() == before.random()  # the generator is left in the same state
        inline = random.Random(f"{model.seed}:{number}:{attempt}")  # the carrier's own draw, without choices()
        again = random.Random(f"{model.seed}:{number}:{attempt}")
        assert _Model(model).draw(inline.random()) == again.choices(old_names, old_weights)[0]
        assert inline.random() == again.random()


def request(number: str, attempt: int, settings: dict[str, object]) -> DialRequest:
    return DialRequest(
        call_id=f"call_{number}_{attempt}",
        organization_id="org",
        campaign_id="cmp",
        lead_id="lead",
        attempt=attempt,
        from_number="+12125550100",
        to_number=number,
        caller_id="num",
        at=START,
        ring_timeout_seconds=25,
        machine_detection=False,
        system_prompt="",
        opening_message="",
        variables={},
        agent_id=None,
        agent_version=None,
        carrier_settings=settings,
    )


@settings(max_examples=100, deadline=None)
@given(outcomes=weights, seed=st.integers(0, 1000), attempts=st.integers(1, 4))
def test_a_model_validated_once_plans_the_calls_a_fresh_carrier_plans(
    outcomes: dict[str, float], seed: int, attempts: int
) -> None:
    raw = SimulatedSettings(seed=seed, outcomes=outcomes).model_dump(mode="json")  # type: ignore[arg-type]
    shared = SimulatedCarrier(VirtualClock(START))
    settings = {"simulated": raw}  # the same object for every call, as the engine hands it over
    for i in range(20):
        number, attempt = f"+1212555{1000 + i:04d}", 1 + i % attempts
        fresh = SimulatedCarrier(VirtualClock(START), SimulatedSettings.model_validate(raw))
        mine = shared._plan(request(number, attempt, settings), shared._model(request(number, attempt, settings)))
        theirs = fresh._plan(request(number, attempt, {}), fresh._model(request(number, attempt, {})))
        assert mine == theirs


def test_a_reseeded_generator_draws_what_a_new_one_seeded_with_the_text_draws() -> None:
    reused = _random.Random()
    for text in ["0:+12125550100:1", "7:+12125550100:3:agent", "seed-é-☎:+33612345678:12", ""]:
        fresh = random.Random(text)
        _seeded(reused, text)
        assert [reused.random() for _ in range(700)] == [fresh.random() for _ in range(700)]  # past one twist


def reference_plan(request: DialRequest, model: SimulatedSettings) -> list[CallEvent]:
    """The plan as the carrier made it with a new `random.Random(text)` per call and `uniform` (the
    draws' order and arithmetic the reused generators must reproduce)."""
    rng = random.Random(f"{model.seed}:{request.to_number}:{request.attempt}")
    script = model.scripted.get(request.to_number) if model.scripted else None
    names, weights = zip(*model.outcomes.items(), strict=True)
    outcome = script[min(request.attempt, len(script)) - 1] if script else rng.choices(names, weights)[0]
    ring, talk = rng.uniform(*model.ring_seconds), rng.uniform(*model.talk_seconds)
    converted = rng.random() < model.conversion_rate
    opted_out = model.opt_out_rate > 0 and rng.random() < model.opt_out_rate
    callback_at = None
    if model.callback_rate > 0 and not opted_out and rng.random() < model.callback_rate:
        callback_at = request.at + timedelta(hours=rng.uniform(*model.callback_after_hours))
    cid, ref = request.call_id, f"sim-{request.call_id}"

    def at(seconds: float) -> datetime:
        return request.at + timedelta(seconds=seconds)

    def end(seconds: float, what: str, **kw: Any) -> CallEvent:
        return CallEvent(cid, "ended", at(seconds), ref, outcome=what, sip_code=SIP_CODES.get(what, 503), **kw)

    def person(ended: CallEvent) -> list[CallEvent]:
        agent = random.Random(f"{model.seed}:{request.to_number}:{request.attempt}:agent")
        connected = at(ring) + timedelta(seconds=agent.uniform(*model.agent_connect_seconds))
        answered = CallEvent(cid, "answered", at(ring), ref, answered_by="human")
        if connected >= ended.at:
            return [answered, ended]
        return [answered, CallEvent(cid, "agent_connected", connected, ref), ended]

    ringing = CallEvent(cid, "ringing", at(min(ring, 0.5)), ref)
    timeout = float(request.ring_timeout_seconds)
    if outcome in ("answered", "voicemail") and ring >= timeout:
        return [ringing, end(timeout, "no_answer")]
    if outcome == "answered":
        return [
            ringing,
            *person(end(ring + talk, "answered", conversion=converted, opted_out=opted_out, callback_at=callback_at)),
        ]
    if outcome == "voicemail":
        machine = CallEvent(cid, "answered", at(ring), ref, answered_by="machine")
        if not request.machine_detection:
            return [ringing, machine, end(ring + talk, "voicemail", voicemail_left=False)]
        detect = rng.uniform(*model.machine_detect_seconds)
        greeting = max(detect, rng.uniform(*model.greeting_seconds))
        if (greeting if request.voicemail_message else detect) > request.machine_detection_timeout_seconds:
            return [ringing, *person(end(ring + talk, "answered"))]
        if request.voicemail_message:
            spoken = max(2.0, len(request.voicemail_message.split()) / 2.5)
            return [ringing, machine, end(ring + greeting + spoken, "voicemail", voicemail_left=True)]
        return [ringing, machine, end(ring + detect, "voicemail", voicemail_left=False)]
    if outcome == "no_answer":
        return [ringing, end(timeout, "no_answer")]
    if outcome == "busy":
        return [ringing, end(min(ring, 3.0), "busy")]
    return [end(min(ring, 1.0), "failed")]


rates = st.floats(0, 1)
spans = st.tuples(st.floats(0.1, 20), st.floats(0.1, 40)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=300, deadline=None)
@given(
    outcomes=weights,
    seed=st.integers(0, 2**31 - 1),
    number=st.integers(2_000_000, 9_999_999).map(lambda n: f"+1212{n}"),
    attempt=st.integers(1, 5),
    rate=st.tuples(rates, rates, rates),
    times=st.tuples(spans, spans, spans),
    detection=st.booleans(),
    timeout=st.integers(2, 30),
    message=st.sampled_from([None, "Hello, this is a reminder of your appointment tomorrow."]),
    script=st.one_of(st.none(), st.lists(st.sampled_from(NAMES), min_size=1, max_size=3)),
)
def test_the_reused_generators_plan_what_new_generators_planned(
    outcomes: dict[str, float],
    seed: int,
    number: str,
    attempt: int,
    rate: tuple[float, float, float],
    times: tuple[tuple[float, float], tuple[float, float], tuple[float, float]],
    detection: bool,
    timeout: int,
    message: str | None,
    script: list[str] | None,
) -> None:
    model = SimulatedSettings(
        seed=seed,
        outcomes=outcomes,  # type: ignore[arg-type]
        conversion_rate=rate[0],
        opt_out_rate=rate[1],
        callback_rate=rate[2],
        ring_seconds=(min(times[0][0], 60), min(times[0][1], 60)),
        machine_detect_seconds=(min(times[1][0], 30), min(times[1][1], 30)),
        greeting_seconds=(min(times[2][0], 30), min(times[2][1], 30)),
        scripted={number: script} if script else {},  # type: ignore[dict-item]
    )
    base = request(number, attempt, {"simulated": model.model_dump(mode="json")})
    req = replace(
        base,
        machine_detection=detection,
        machine_detection_timeout_seconds=timeout,
        voicemail_message=message,
    )
    carrier = SimulatedCarrier(VirtualClock(START))
    carrier._plan(request("+12125550199", 1, {}), carrier._model(request("+12125550199", 1, {})))  # used before
    assert carrier._plan(req, carrier._model(req)) == reference_plan(req, carrier._model(req).settings)
