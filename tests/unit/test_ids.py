"""Identifiers: a prefix, then 26 Crockford base32 symbols (48-bit milliseconds, 80 random bits)."""

from __future__ import annotations

import re
import time
from collections import Counter

from dialwave.ids import _ALPHABET, new_id, new_ids

SHAPE = re.compile(r"lead_[0-9a-hjkmnp-tv-z]{26}")


def _ms(identifier: str) -> int:
    """The milliseconds an id's first 10 symbols hold."""
    value = 0
    for symbol in identifier.split("_", 1)[1][:10]:
        value = value * 32 + _ALPHABET.index(symbol)
    return value


def test_a_batch_of_ids_has_the_shape_and_time_of_one_id() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_ids("lead", 5_000)
    one = new_id("lead")
    after = time.time_ns() // 1_000_000
    assert len(ids) == len(set(ids)) == 5_000
    assert all(SHAPE.fullmatch(i) for i in [*ids, one])
    assert all(before <= _ms(i) <= after for i in [*ids, one])
    assert new_ids("call", 0) == []


def test_the_random_symbols_are_spread_evenly() -> None:
    counts = Counter("".join(i[-16:] for i in new_ids("lead", 20_000)))  # 320,000 symbols, 10,000 each
    assert set(counts) == set(_ALPHABET)
    assert all(9_000 < n < 11_000 for n in counts.values())
