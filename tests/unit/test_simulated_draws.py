"""The simulated carrier draws exactly what it drew before it validated each model once and kept its
cumulative outcome weights: the same outcome and the same generator state after it, so every later
draw (ring, talk, conversion, ...) is the same for a seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from dialwave.clock import VirtualClock
from dialwave.domain.resources import SimOutcome, SimulatedSettings
from dialwave.telephony.base import DialRequest
from dialwave.telephony.simulated import SimulatedCarrier, _Model, outcome_table

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
