"""The simulated carrier's model for a forecast, from what a campaign's calls have shown so far: the
outcome mix, how long phones ring before an answer and how long answered calls last, how often an
answered call converts or opts out. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dialwave.domain.resources import SimulatedSettings

MIN_CALLS = 50  # ended calls before the observed mix replaces the model
MIN_SAMPLES = 5  # answered calls before observed ring and talk times replace the model's
# How each stored outcome reads as what the carrier saw.
CARRIER_OUTCOME = {
    "answered": "answered",
    "short_duration": "answered",
    "no_conversion": "answered",
    "opted_out": "answered",
    "voicemail": "voicemail",
    "busy": "busy",
    "no_answer": "no_answer",
    "failed": "failed",
    "provider_error": "failed",
}


def _span(values: list[float], fallback: tuple[float, float], top: float) -> tuple[float, float]:
    """The 10th to 90th percentile (a uniform draw over it keeps the middle of what was seen)."""
    if len(values) < MIN_SAMPLES:
        return fallback
    ordered = sorted(values)
    low, high = ordered[int(0.1 * (len(ordered) - 1))], ordered[int(0.9 * (len(ordered) - 1))]
    return (round(min(low, top), 3), round(min(high, top), 3))


def observed_model(calls: Sequence[Mapping[str, Any]], base: SimulatedSettings | None) -> tuple[SimulatedSettings, str]:
    """(the model, where its mix comes from: "observed", "model" (the numbers' simulated model) or
    "defaults"). `calls`: ended calls with outcome, started_at, answered_at, ended_at, conversion."""
    fallback = base or SimulatedSettings()
    seen = [c for c in calls if c["outcome"] in CARRIER_OUTCOME]
    if len(seen) < MIN_CALLS:
        return fallback, "model" if base is not None else "defaults"
    mix = Counter(CARRIER_OUTCOME[c["outcome"]] for c in seen)
    answered = [c for c in seen if CARRIER_OUTCOME[c["outcome"]] == "answered" and c["answered_at"] is not None]
    rings = [(c["answered_at"] - c["started_at"]).total_seconds() for c in answered if c["started_at"] is not None]
    talks = [(c["ended_at"] - c["answered_at"]).total_seconds() for c in answered if c["ended_at"] is not None]
    reported = [c["conversion"] for c in answered if c["conversion"] is not None]
    conversion = sum(reported) / len(reported) if len(reported) >= MIN_SAMPLES else fallback.conversion_rate
    opt_outs = sum(c["outcome"] == "opted_out" for c in answered)
    model = fallback.model_copy(
        update={
            "outcomes": {name: round(n / len(seen), 6) for name, n in sorted(mix.items())},
            "ring_seconds": _span(rings, fallback.ring_seconds, 600),
            "talk_seconds": _span(talks, fallback.talk_seconds, 14_400),
            "conversion_rate": round(conversion, 6),
            "opt_out_rate": round(opt_outs / len(answered), 6)
            if len(answered) >= MIN_SAMPLES
            else fallback.opt_out_rate,
            "scripted": None,
        }
    )
    return SimulatedSettings.model_validate(model.model_dump()), "observed"
