"""Each caller-id strategy picks the number to call from as its name says: by weight, in turn, per lead or nearby."""

from __future__ import annotations

import hashlib

import pytest

from dialwave.domain.caller_ids import Caller, Choice, choose


@pytest.mark.parametrize("strategy", ["weighted", "round_robin", "sticky", "local_presence"])
def test_each_strategy_picks_caller_ids_by_weight_in_turn_per_lead_or_by_locality(strategy: str) -> None:
    pool = [Caller("a", "+12125550100", 1), Caller("b", "+14155550100", 3), Caller("c", "+442071234567", 1)]
    everyone = {"a", "b", "c"}
    picks = [choose(strategy, pool, everyone, f"lead{i}", 1, "+14155559999", i) for i in range(400)]
    assert all(p is not None for p in picks)
    ids = [p.phone_number_id for p in picks if p]
    if strategy == "round_robin":
        assert ids[:6] == ["a", "b", "c", "a", "b", "c"]
    if strategy == "weighted":
        assert 0.5 < ids.count("b") / len(ids) < 0.7  # weight 3 of 5
    if strategy == "local_presence":
        assert set(ids) == {"b"}  # same area code (415)
        uk = choose(strategy, pool, everyone, "x", 1, "+447700900123", 0)
        assert uk is not None and uk.phone_number_id == "c"  # same country
    if strategy == "sticky":
        again = [choose(strategy, pool, everyone, f"lead{i}", 2, "+14155559999", 7) for i in range(400)]
        assert [p.phone_number_id for p in again if p] == ids
        own = ids[0]  # lead0's number; when it is busy, lead0 waits rather than switching
        assert choose(strategy, pool, everyone - {own}, "lead0", 3, "+14155559999", 0) is None


def _drawn(pool: list[Caller], available: set[str], text: str) -> Caller:
    """The documented draw, restated: blake2b-64 of `text` as a fraction of the free callers' weights,
    walked in pool order."""
    free = [c for c in pool if c.phone_number_id in available]
    u = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64
    mark = u * sum(c.weight for c in free)
    for caller in free:
        mark -= caller.weight
        if mark < 0:
            return caller
    return free[-1]


def test_the_weighted_and_sticky_draws_are_the_hash_of_lead_and_attempt_also_when_chosen_per_claim() -> None:
    """A forecast replays these draws: `choose` and a claim's `Choice` (one per claim) pick as the hash
    says, the weighted over the free callers, the sticky over the whole pool."""
    pool = [Caller("a", "+12125550100", 2), Caller("b", "+14155550100", 3), Caller("c", "+13125550100", 5)]
    for available in ({"a", "b", "c"}, {"a", "c"}, {"b"}):
        per_claim = Choice("weighted", pool, available)
        sticky = Choice("sticky", pool, available)
        for i in range(300):
            lead, attempt = f"lead_{i:04d}", 1 + i % 3
            expected = _drawn(pool, available, f"{lead}:{attempt}")
            assert choose("weighted", pool, available, lead, attempt, "+14155559999", i) == expected
            assert per_claim.pick(lead, attempt, "+14155559999", i) == expected
            own = _drawn(pool, {"a", "b", "c"}, lead)
            assert sticky.pick(lead, attempt, "+14155559999", i) == (own if own.phone_number_id in available else None)
