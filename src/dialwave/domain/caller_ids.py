"""Which caller id dials a lead: weighted, round_robin, sticky (same number for every attempt of a
lead) or local_presence (same country and area code when the pool has one). Deterministic: choices
come from a hash of lead id and attempt, so a simulation replays exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers


@dataclass(frozen=True)
class Caller:
    phone_number_id: str
    number: str  # E.164
    weight: int


def _unit(*parts: object) -> float:
    return _unit_of(":".join(map(str, parts)))


def _unit_of(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _weighted(pool: Sequence[Caller], u: float, total: int | None = None) -> Caller:
    mark = u * (sum(c.weight for c in pool) if total is None else total)
    for caller in pool:
        mark -= caller.weight
        if mark < 0:
            return caller
    return pool[-1]


@lru_cache(maxsize=100_000)
def locality(e164: str) -> tuple[int, str]:
    """(country code, area code or '') of a number."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return 0, ""
    national = str(number.national_number)
    size = 3 if number.country_code == 1 else phonenumbers.length_of_geographical_area_code(number)
    return int(number.country_code or 0), national[:size]


def choose(
    strategy: str,
    pool: Sequence[Caller],
    available: set[str],
    lead_id: str,
    attempt: int,
    to_number: str,
    turn: int,
) -> Caller | None:
    """The caller id for this attempt among `pool` (the campaign's, in order), or None when the one it
    must use is busy (sticky) or none is free. `turn` is the campaign's round-robin counter."""
    return Choice(strategy, pool, available).pick(lead_id, attempt, to_number, turn)


class Choice:
    """`choose` for the leads of one claim: the pool, the ids available and the strategy are the same
    for all of them, so the free callers and their total weight are found once."""

    def __init__(self, strategy: str, pool: Sequence[Caller], available: set[str]) -> None:
        self.strategy, self.pool, self.available = strategy, pool, available
        self.free = [c for c in pool if c.phone_number_id in available]
        self.pool_weight = sum(c.weight for c in pool)
        self.free_weight = sum(c.weight for c in self.free)

    def pick(self, lead_id: str, attempt: int, to_number: str, turn: int) -> Caller | None:
        free = self.free
        if not free:
            return None
        strategy = self.strategy
        if strategy == "sticky":
            pick = _weighted(self.pool, _unit_of(lead_id), self.pool_weight)
            return pick if pick.phone_number_id in self.available else None
        if strategy == "round_robin":
            return free[turn % len(free)]
        if strategy == "local_presence":
            country, area = locality(to_number)
            same_area = [c for c in free if locality(c.number) == (country, area) and area]
            same_country = [c for c in free if locality(c.number)[0] == country]
            free = same_area or same_country or free
            return _weighted(free, _unit_of(f"{lead_id}:{attempt}"))
        return _weighted(free, _unit_of(f"{lead_id}:{attempt}"), self.free_weight)
